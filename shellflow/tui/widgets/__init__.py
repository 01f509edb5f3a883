"""Widgets shared by the dashboard's screens."""

from shellflow.tui.widgets.metrics import MetricsPanel
from shellflow.tui.widgets.state import STATE_STYLES, clip, plain, seconds_text, state_text
from shellflow.tui.widgets.status_bar import StatusBar

__all__ = [
    "STATE_STYLES",
    "MetricsPanel",
    "StatusBar",
    "clip",
    "plain",
    "seconds_text",
    "state_text",
]
