"""A call's state as coloured text (the same colours on every screen), and stored text as text.

Whatever a screen shows from the database goes through :func:`plain` (or :func:`clip`,
:func:`state_text`): a rich ``Text`` is never parsed as markup, so a name holding ``[/]``
cannot crash a screen nor ``[@click=app.quit]`` act, and its control characters are written
out (:mod:`shellflow.printable`), so an ESC sequence never reaches the terminal.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from shellflow.printable import printable

STATE_STYLES = {
    "finished": "green",
    "failed": "bold red",
    "running": "yellow",
    "received": "cyan",
    "pending": "cyan",
    "retry": "magenta",
    "revoked": "bright_black",
    "dead": "bold red reverse",
}


def plain(value: Any, style: str = "", *, multiline: bool = False) -> Text:
    """A stored value as text for a widget: no markup, control characters escaped."""
    return Text(printable("" if value is None else str(value), multiline=multiline), style=style)


def state_text(state: str | None) -> Text:
    state = state or "?"
    return plain(state, STATE_STYLES.get(state, ""))


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


def clip(text: str | None, width: int, *, left: bool = False) -> Text:
    """Cut to ``width`` with an ellipsis; ``left`` keeps the end (a socket's function name).

    Escaped first, so the width is that of what is shown.
    """
    return Text(_clipped(printable(text or ""), width, left))


def _clipped(text: str, width: int, left: bool) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if left else text[: width - 1] + "…"
