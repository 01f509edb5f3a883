"""A call's state as coloured text: the same colours on every screen."""

from __future__ import annotations

from rich.text import Text

STATE_STYLES = {
    "finished": "green",
    "failed": "bold red",
    "running": "yellow",
    "received": "cyan",
    "pending": "cyan",
    "retry": "magenta",
    "revoked": "bright_black",
}


def state_text(state: str | None) -> Text:
    state = state or "?"
    return Text(state, style=STATE_STYLES.get(state, ""))


def seconds_text(seconds: float | None) -> str:
    """A duration or an age, short enough for a narrow column: 12ms, 3.4s, 5m02s, 2h05m."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def clip(text: str | None, width: int, *, left: bool = False) -> str:
    """Cut to ``width`` with an ellipsis; ``left`` keeps the end (a socket's function name)."""
    text = text or ""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if left else text[: width - 1] + "…"
