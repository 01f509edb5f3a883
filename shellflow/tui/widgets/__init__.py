"""Widgets shared by the dashboard's screens."""

from shellflow.tui.widgets.metrics import MetricsPanel, SocketMetrics
from shellflow.tui.widgets.state import STATE_STYLES, clip, plain, seconds_text, state_text
from shellflow.tui.widgets.status_bar import StatusBar

__all__ = [
    "STATE_STYLES",
    "MetricsPanel",
    "SocketMetrics",
    "StatusBar",
    "clip",
    "plain",
    "seconds_text",
    "state_text",
]
