"""Processes of this machine: whether one runs, since when, and whether it is still the same.

:class:`ProcessId` is the one answer to "is this pid still ours?" for everything that stores
a pid and later acts on it (the spool's folders, the agent's and workers' rows, the Redis
records of held messages): a pid is compared with its start time, never guessed from words
in the process's command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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


@dataclass(frozen=True)
class ProcessId:
    """One process for good: its pid and its start time (a pid is reused, the pair is not).

    ``start`` is ``started(pid)`` when the process was seen: "0" where /proc cannot tell,
    "" when it was never stored (a pid written before start times were). Either of those
    leaves the pid alone to decide, as it did before.

    Stored as text, ``"<pid>-<start>"`` (or ``"<pid>"`` when the start is unknown); ``parse``
    reads both forms, so what older versions stored still reads.
    """

    pid: int
    start: str = ""

    @classmethod
    def current(cls) -> ProcessId:
        """This process."""
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        """The process that has ``pid`` now."""
        return cls(pid, started(pid))

    @classmethod
    def parse(cls, text: str | int | None, start: str | None = None) -> ProcessId | None:
        """``"<pid>-<start>"``, ``"<pid>"`` or a bare int; ``start`` given apart (a second
        column) wins. None for anything that names no process (empty, not a number, 0)."""
        pid_text, _, since = str(text if text is not None else "").strip().partition("-")
        if not pid_text.isdigit() or int(pid_text) <= 0:
            return None
        since = start if start else since
        return cls(int(pid_text), since if since.isdigit() else "")

    @property
    def known(self) -> bool:
        """Whether the start time was recorded, so a reused pid can be told apart."""
        return self.start not in ("", "0")

    def alive(self) -> bool:
        """Whether this very process still runs (not merely some process with its pid)."""
        if not pid_alive(self.pid):
            return False
        return not self.known or started(self.pid) in (self.start, "0")

    def is_same(self, other: ProcessId) -> bool:
        """Whether both name one process (an unknown start on either side trusts the pid)."""
        if self.pid != other.pid:
            return False
        return not (self.known and other.known) or self.start == other.start

    def __str__(self) -> str:
        return f"{self.pid}-{self.start}" if self.start else str(self.pid)
