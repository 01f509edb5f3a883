"""Modal dialogs: confirmation before an action, and the help."""

from shellflow.tui.dialogs.confirm import ConfirmDialog
from shellflow.tui.dialogs.help import HelpDialog

__all__ = ["ConfirmDialog", "HelpDialog"]
