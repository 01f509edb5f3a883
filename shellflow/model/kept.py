"""One read-only connection that a short command's look-ups in a row share.

``flow task run`` with a login reads who acts (the token and its rights) and then the
socket's route. On SQLite a connection's first statement parses the whole schema (about
2 ms here), so two fresh connections would pay it twice: the rights check alone would cost
more than the 1 ms it is allowed. Both look-ups take their connection from
:func:`kept_reader` instead, which hands back the one the previous look-up returned.

Bounds, so that a kept connection never outlives its use: one per database URL and thread,
handed to one user at a time (a thread that finds it taken opens its own), discarded once
:data:`KEPT_FOR` seconds old (a server restarted meanwhile is never met through a stale
one), closed rather than kept when the block raised, and forgotten (not closed) in a forked
child. A connection is only ever used by the thread that opened it: SQLite refuses one
from another thread (the dashboard resolves who acts in each action's worker thread), and
those of threads that have ended are dropped when another is kept.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from shellflow import process_state
from shellflow.model.listing import Reader

KEPT_FOR = 5.0  # seconds a connection is kept for the next look-up


class _Kept:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.readers: dict[tuple[str, int], tuple[float, Reader]] = {}

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.readers = {}  # the parent's: not closed here


_state = process_state.own(__name__, _Kept())


@contextmanager
def kept_reader(url: str) -> Iterator[Reader]:
    """A read-only :class:`Reader` on ``url``: the one kept from the last look-up if it is
    fresh, else a new one; kept again for the next when the block ends without raising."""
    key = (url, threading.get_ident())
    with _state.lock:
        kept = _state.readers.pop(key, None)
    conn: Reader | None = None
    if kept is not None:
        if time.monotonic() - kept[0] < KEPT_FOR:
            conn = kept[1]
        else:
            kept[1].close()
    if conn is None:
        conn = Reader(url)
    try:
        yield conn
    except BaseException:
        conn.close()
        raise
    with _state.lock:
        if key not in _state.readers:
            alive = {thread.ident for thread in threading.enumerate()}
            for gone in [k for k in _state.readers if k[1] not in alive]:
                _drop(_state.readers.pop(gone)[1])
            _state.readers[key] = (time.monotonic(), conn)
            return
    conn.close()


def _drop(conn: Reader) -> None:
    """Close a connection whose thread has ended; SQLite refuses to close another thread's,
    which is then freed with its last reference (here)."""
    with contextlib.suppress(Exception):
        conn.close()
