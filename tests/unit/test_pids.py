"""The one process-identity helper: a pid counts as ours only with its start time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shellflow.engine.pids import ProcessId, started

linux_only = pytest.mark.skipif(started(os.getpid()) == "0", reason="no /proc start times")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@linux_only
def test_this_process_is_alive_and_itself() -> None:
    me = ProcessId.current()
    assert me.pid == os.getpid() and me.known
    assert me.alive()
    assert me.is_same(ProcessId.of(os.getpid()))


@linux_only
def test_a_pid_reused_by_another_process_counts_as_dead() -> None:
    """The live pid with another start time is a different process: the one stored is gone."""
    me = ProcessId.current()
    before = ProcessId(me.pid, str(int(me.start) - 1))
    assert not before.alive()
    assert not before.is_same(me) and not me.is_same(before)


def test_a_process_that_exited_is_dead() -> None:
    gone = ProcessId.parse(f"{_dead_pid()}-12345")
    assert gone is not None and not gone.alive()


def test_an_unknown_start_leaves_the_pid_to_decide() -> None:
    """What older versions stored (a pid alone) reads, and means what it meant."""
    assert ProcessId(os.getpid()).alive() and not ProcessId(os.getpid()).known
    assert ProcessId(os.getpid(), "0").alive()
    assert ProcessId(os.getpid()).is_same(ProcessId.current())
    assert not ProcessId(_dead_pid()).alive()


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("123-4567", None, ProcessId(123, "4567")),
        ("123", None, ProcessId(123, "")),
        (123, None, ProcessId(123, "")),
        (123, "4567", ProcessId(123, "4567")),
        ("123-0", None, ProcessId(123, "0")),
        ("123-junk", None, ProcessId(123, "")),
        (" 42 ", "", ProcessId(42, "")),
        ("", None, None),
        (None, "4567", None),
        ("0", None, None),
        ("abc-1", None, None),
        ("-5", None, None),
    ],
)
def test_parse_reads_every_stored_form(
    text: str | int | None, start: str | None, expected: ProcessId | None
) -> None:
    assert ProcessId.parse(text, start) == expected


def test_the_string_form_round_trips() -> None:
    for process in (ProcessId(123, "4567"), ProcessId(123), ProcessId(9, "0")):
        assert ProcessId.parse(str(process)) == process
    assert str(ProcessId(123, "4567")) == "123-4567" and str(ProcessId(123)) == "123"


@linux_only
def test_spool_folders_of_a_reused_pid_are_leftovers(tmp_path: object) -> None:
    from shellflow.engine.records import spool

    me = ProcessId.current()
    assert spool._owner_alive(str(me))
    assert spool._owner_alive(str(me.pid))  # an older folder name: the pid decides
    assert not spool._owner_alive(f"{me.pid}-{int(me.start) + 1}")


@linux_only
def test_unacked_holders_of_a_reused_pid_are_dead() -> None:
    """A worker killed with its messages held: another program now has its pid. Its
    messages are requeued at once, not after the hour-long visibility timeout."""
    from shellflow.engine.transport.unacked import PREFIX, holder_key, holder_of

    me = ProcessId.current()
    host, process = holder_of(holder_key("node.example.org", me))
    assert host == "node.example.org" and process == me and process.alive()
    reused = ProcessId(me.pid, str(int(me.start) + 1))
    _, process = holder_of(holder_key("node.example.org", reused))
    assert process is not None and not process.alive()
    _, old = holder_of(f"{PREFIX}node.example.org.{me.pid}")  # an older key
    assert old == ProcessId(me.pid) and old.alive()
    assert holder_of(f"{PREFIX}node.example.org.garbage")[1] is None
