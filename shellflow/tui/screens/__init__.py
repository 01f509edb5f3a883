"""The dashboard's screens, one module each."""

from shellflow.tui.screens.call_detail import CallDetailScreen
from shellflow.tui.screens.call_graph import CallGraphScreen
from shellflow.tui.screens.calls import CallsScreen
from shellflow.tui.screens.command_log import CommandLogScreen
from shellflow.tui.screens.live import LiveScreen
from shellflow.tui.screens.network import NetworkScreen

__all__ = [
    "CallDetailScreen",
    "CallGraphScreen",
    "CallsScreen",
    "CommandLogScreen",
    "LiveScreen",
    "NetworkScreen",
]
