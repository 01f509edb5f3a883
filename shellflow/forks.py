"""Fork safety, registered once: what a forked child lets go of before it runs.

Celery's prefork pool, multiprocessing's ``fork`` context and a script's own ``os.fork``
copy a process whole, with its connections, locks and caches. A child that wrote to its
parent's database connection or broker socket would interleave its bytes with the parent's
on the same socket, and a lock that another thread held at the moment of the fork stays
held for ever in the child. So each module that keeps such state registers a reset here,
and this module alone asks the OS (``os.register_at_fork``), once, to run them all in every
child right after the fork, before the child runs anything else.

A reset must be quick and do no I/O (the child connects again on first use), and must drop
what it inherited without closing it: the parent is still using it. Resets run in the
order they were first registered, so a lower layer's (imported first) runs before those of
the layers built on it. This module imports nothing of shellflow: every layer may use it.
"""

from __future__ import annotations

import logging
import os
import threading
import types
import weakref
from collections.abc import Callable, Hashable

Reset = Callable[[], None]

log = logging.getLogger(__name__)

_lock = threading.Lock()
# key -> a way to get the reset back (None once its object is gone), in registration order
_resets: dict[Hashable, Callable[[], Reset | None]] = {}
_installed = False


def at_fork(reset: Reset, name: str | None = None) -> None:
    """Run ``reset`` in every child forked from now on; registering it again changes nothing.

    A bound method is held weakly, so an object that registers its own reset (one per
    instance: a worker's recorder, spool, publisher) is not kept alive for it, and is
    registered once per object. Anything else is held as given, once per ``name`` when
    one is given (a later registration under that name replaces the earlier), else once
    per callable.
    """
    global _installed
    key: Hashable
    get: Callable[[], Reset | None]
    if name is not None:
        key, get = name, (lambda: reset)
    elif isinstance(reset, types.MethodType):
        key, get = (id(reset.__self__), reset.__func__), weakref.WeakMethod(reset)
    else:
        key, get = reset, (lambda: reset)
    with _lock:
        for gone in [k for k, got in _resets.items() if got() is None]:
            del _resets[gone]  # its object died: an id used again must not find it
        _resets[key] = get
        if not _installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _installed = True


def _after_fork_in_child() -> None:
    """Run every live reset, each on its own: one failing must not leave the others undone."""
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for key, get in list(_resets.items()):
        reset = get()
        if reset is None:
            _resets.pop(key, None)
            continue
        try:
            reset()
        except Exception:  # the child goes on; what this reset held may misbehave there
            log.exception("shellflow: resetting %r after fork failed", key)
