"""Fork safety registered once: resets run in a forked child, never in the parent, and the
OS is asked once however many modules and objects register."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Callable

import pytest

from shellflow import forks

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")


def in_child(check: Callable[[], bool]) -> int:
    """Fork; the child exits 0 when ``check()`` holds, 1 when not, 2 when it raised."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 2
        try:
            code = 0 if check() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class Counter:
    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


def test_a_registered_reset_runs_in_the_child_and_not_in_the_parent() -> None:
    counter = Counter()
    forks.at_fork(counter.reset)
    assert in_child(lambda: counter.resets == 1) == 0
    assert counter.resets == 0


def test_registering_again_runs_the_reset_once() -> None:
    counter = Counter()
    for _ in range(3):
        forks.at_fork(counter.reset)
    ran: list[int] = []
    forks.at_fork(lambda: ran.append(1), name="tests.unit.test_forks.named")
    forks.at_fork(lambda: ran.append(2), name="tests.unit.test_forks.named")  # replaces it
    try:
        assert in_child(lambda: counter.resets == 1 and ran == [2]) == 0
    finally:
        forks._resets.pop("tests.unit.test_forks.named", None)


def test_an_object_is_not_kept_alive_by_its_reset() -> None:
    counter = Counter()
    forks.at_fork(counter.reset)
    alive = weakref.ref(counter)
    del counter
    gc.collect()
    assert alive() is None


def test_a_failing_reset_leaves_the_others_to_run() -> None:
    def broken() -> None:
        raise RuntimeError("reset failed")

    counter = Counter()
    forks.at_fork(broken)
    forks.at_fork(counter.reset)
    try:
        assert in_child(lambda: counter.resets == 1) == 0
    finally:
        forks._resets.pop(broken, None)
