"""Give the dashboard a terminal even when ``flow tui`` is started with stdin piped.

Textual reads keys from file descriptor 0 and draws on descriptor 2. When either is not a
terminal (``echo | flow tui``, ``flow tui 2>log``), the controlling terminal is opened
again (``/dev/tty``) and put in its place, as ``less`` and ``fzf`` do.
"""

from __future__ import annotations

import os

from shellflow.errors import UsageError


def ensure_terminal() -> None:
    needs = [fd for fd in (0, 2) if not os.isatty(fd)]
    if not needs:
        return
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        reason = f"flow tui needs a terminal and none is available ({exc.strerror})"
        raise UsageError(reason) from exc
    for fd in needs:
        os.dup2(tty, fd)
    os.close(tty)
