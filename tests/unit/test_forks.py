"""Fork safety registered once: resets run in a forked child, never in the parent, and the
OS is asked once however many modules and objects register."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
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


# A fresh interpreter counts every os.register_at_fork made from shellflow while the
# modules that keep per-process state are imported and their objects made.
_COUNT = """
import os, tempfile, pathlib
calls = []
original = os.register_at_fork
def counting(**hooks):
    calls.append(hooks)
    return original(**hooks)
os.register_at_fork = counting
import shellflow.forks, shellflow.process_state
import shellflow.model.db, shellflow.client.settings, shellflow.engine.calls.sender
from shellflow.engine.dataflow.plugs import Plugs, plugs_for
from shellflow.engine.records.events import Publisher
from shellflow.engine.records.recorder import Recorder
from shellflow.engine.records.spool import Spool
url = "sqlite:///" + tempfile.mkdtemp() + "/model.db"
kept = []
for _ in range(3):
    spool = Spool(pathlib.Path(tempfile.mkdtemp()))
    kept += [spool, Recorder(url, spool), Publisher("redis://127.0.0.1:6379/0", "r"), Plugs(url)]
    plugs_for(url)
def ours(hook):
    return (getattr(hook, "__module__", None) or "").startswith("shellflow")
print(sum(ours(h.get("after_in_child")) for h in calls), len(shellflow.forks._resets))
"""


def test_the_os_is_asked_once_however_many_register() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _COUNT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    asked, registered = map(int, proc.stdout.split())
    assert asked == 1
    assert registered == 1 + 3 * 4 + 1  # the runtime object, each object kept, plugs_for's
