"""The state shellflow keeps per process: one runtime object, reset after a fork.

A long-lived process keeps what it must not rebuild on every call: the Celery apps and
the sockets' routes of ``shellflow.engine.calls.sender``, the engines of
``shellflow.model.db``, the plugs readers of ``shellflow.engine.dataflow.plugs``, the row
ids of ``shellflow.engine.records.recorder``, the Python API's settings. Each owning
module keeps its own state in one part registered here under the module's name, so that
all of it is found in one place (:data:`STATE`), and a forked child resets all of it
through one registration with ``shellflow.forks``, instead of each module checking
``os.getpid()`` on its own (or not at all).

A part guards itself against threads (it knows which of its fields threads share) and says
in its ``after_fork`` what a child keeps: a child builds its own Celery apps, keeps its
engines but not their pooled connections, keeps the settings it was configured with.
Objects with lifetimes of their own (a worker's recorder, spool and publisher, a plugs
reader) register their own reset with ``shellflow.forks``, held weakly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, MutableMapping
from typing import Protocol, TypeVar

from shellflow import forks


class Part(Protocol):
    """One module's per-process state."""

    def after_fork(self) -> None:
        """In a forked child: drop what belongs to the parent (without closing it) and make
        new locks; quick, and no I/O."""


P = TypeVar("P", bound=Part)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def made_once(
    table: MutableMapping[K, V], lock: threading.Lock, key: K, make: Callable[[], V]
) -> V:
    """``table[key]``, made by ``make()`` under ``lock`` the first time it is asked for.

    A lookup takes no lock (one dict read, on every call); a miss takes it and looks again,
    so two threads never make the same value twice.
    """
    found = table.get(key)
    if found is None:
        with lock:
            found = table.get(key)
            if found is None:
                found = table[key] = make()
    return found


class ProcessState:
    """The process's parts by owner; every part's ``after_fork`` runs in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: dict[str, Part] = {}

    def own(self, owner: str, part: P) -> P:
        """Register ``part`` as ``owner``'s state and return it.

        One part per owner: a module imported again (``importlib.reload``) replaces its
        part rather than adding a second.
        """
        with self._lock:
            self._parts[owner] = part
        return part

    def parts(self) -> dict[str, Part]:
        """Every part by owner (a copy), for a reader who wants to see it all."""
        with self._lock:
            return dict(self._parts)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        for owner, part in list(self._parts.items()):
            try:
                part.after_fork()
            except Exception:  # as shellflow.forks does: the other parts still reset
                forks.log.exception("shellflow: resetting %s after fork failed", owner)


STATE = ProcessState()
forks.at_fork(STATE.after_fork, name=__name__)


def own(owner: str, part: P) -> P:
    """Register ``part`` as ``owner``'s state in :data:`STATE` (see :meth:`ProcessState.own`)."""
    return STATE.own(owner, part)
