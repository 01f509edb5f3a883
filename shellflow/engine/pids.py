"""Processes of this machine, by pid: whether one runs, and since when."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """Whether a process ``pid`` runs here (one of another user's counts)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot; "0" where /proc cannot tell).

    With the pid, it names a process for good: a pid is used again, a start time is not.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "0"
