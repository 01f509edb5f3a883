"""The dashboard's UI-free core: queries and actions, importable and testable without Textual."""

from shellflow.tui.data.actions import Action, cancel, processor_action, rerun
from shellflow.tui.data.calls import CallFilter, CallPage, CallRow, Cursor, count_calls, fetch_page
from shellflow.tui.data.network import Network, Summary, read_network, summary

__all__ = [
    "Action",
    "CallFilter",
    "CallPage",
    "CallRow",
    "Cursor",
    "Network",
    "Summary",
    "cancel",
    "count_calls",
    "fetch_page",
    "processor_action",
    "read_network",
    "rerun",
    "summary",
]
