"""Stored text made safe to show on a terminal: control characters are written out, never sent.

Names, errors, printed lines and results come back from the database holding whatever was put
in them, perhaps before any name rule existed. Sent raw, an ESC sequence in one of them drives
the terminal of whoever looks (OSC 52 writes their clipboard, ``ESC [2J`` clears the screen, a
title sequence renames the window), and a newline in a name forges a line of its own. So every
human-facing rendering (rich tables, ``flow ls call``, ``flow listen``, one-line errors, the
dashboard) passes stored text through :func:`printable` first.

**The form** (README, "Control characters in stored text"): each character of Unicode
category Cc (C0 ``U+0000``-``U+001F``, DEL ``U+007F``, C1 ``U+0080``-``U+009F``) is shown as
its Python escape: ``\\t``, ``\\n``, ``\\r`` for tab, newline and carriage return, ``\\xNN``
for every other one (ESC is ``\\x1b``); a lone surrogate (which no terminal can be sent) is
shown as ``\\udNNN``.
Backslashes are left alone, so a human reading ``\\x1b`` cannot tell it from the four typed
characters; the exact value is what ``--json`` prints. Multi-line fields (a traceback, printed
output) keep their newlines and tabs.

Data is never changed: NDJSON and ``--json`` print the exact JSON string (where JSON escapes
C0 itself), and ``flow task run`` prints a result exactly as the function returned it.

This module imports nothing of shellflow, so the command line and the dashboard (which must
not import each other) share it.
"""

from __future__ import annotations

import re

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
_ONE_LINE = str.maketrans({c: _NAMED.get(c, f"\\x{ord(c):02x}") for c in _CONTROLS})
_MULTI_LINE = str.maketrans(
    {c: _NAMED.get(c, f"\\x{ord(c):02x}") for c in _CONTROLS if c not in "\t\n"}
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character written as an escape (see the module's doc).

    ``multiline`` keeps newlines and tabs, for a field shown over several lines.
    """
    shown = text.translate(_MULTI_LINE if multiline else _ONE_LINE)
    if _SURROGATE.search(shown):
        shown = _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", shown)
    return shown
