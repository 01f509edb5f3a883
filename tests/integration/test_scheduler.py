"""Scheduled sockets fire exactly once per due time; placement by free CPUs."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from shellflow.config import load_settings
from shellflow.engine.transport.message import TaskMessage
from shellflow.engine.transport.transports.stub import StubTransport


@pytest.fixture
def scheduled(cli, initialised_db: str) -> str:
    cli.ok("add", "queue", "-n", "q")
    cli.ok("add", "processor", "-n", "p", "-g", "/repo", "-m", "m")
    cli.ok("add", "socket", "-n", "every5", "-q", "q", "-pn", "p", "-t", "f", "--interval", "5")
    cli.ok(
        "add", "socket", "-n", "minutely", "-q", "q", "-pn", "p", "-t", "g", "--cron", "* * * * *"
    )
    cli.ok("add", "socket", "-n", "plain", "-q", "q", "-pn", "p", "-t", "h")
    return initialised_db


class _Recording(StubTransport):
    """The in-memory transport, also noting which socket each message went to."""

    def __init__(self, fired: list[str]) -> None:
        super().__init__()
        self.fired = fired

    def send(self, message: TaskMessage) -> None:
        super().send(message)
        self.fired.append(message.name)


def _scheduler(fired: list[str], name: str = "s1"):  # type: ignore[no-untyped-def]
    from shellflow.engine.fleet.scheduler import Scheduler

    return Scheduler(load_settings(), transport=_Recording(fired), name=name)


def test_interval_and_cron_fire_on_time(scheduled: str) -> None:
    fired: list[str] = []
    scheduler = _scheduler(fired)
    t0 = 1_800_000_000.0  # a whole minute
    assert scheduler.tick(t0) == []  # first sight: due times are counted from now
    assert scheduler.tick(t0 + 4.9) == []
    assert scheduler.tick(t0 + 5.0) == ["every5"]
    assert scheduler.tick(t0 + 5.1) == []
    assert sorted(scheduler.tick(t0 + 60.0)) == ["every5", "minutely"]  # missed ones: once
    assert scheduler.tick(t0 + 64.0) == []
    assert scheduler.tick(t0 + 65.0) == ["every5"]
    assert "plain" not in fired


def test_two_schedulers_never_double_fire(scheduled: str) -> None:
    fired: list[str] = []
    from shellflow.engine.fleet.scheduler import Scheduler

    schedulers = [
        Scheduler(load_settings(), transport=_Recording(fired), name=f"s{i}") for i in range(2)
    ]
    t0 = 1_800_000_000.0
    schedulers[0].tick(t0)
    errors: list[BaseException] = []

    def run(scheduler: Scheduler) -> None:
        try:
            for step in range(1, 13):
                scheduler.tick(t0 + 5.0 * step)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # 12 due times of every5 and one of minutely (t0 + 60), each fired once in all.
    assert sorted(fired) == sorted(["every5"] * 12 + ["minutely"])


def test_unscheduled_or_deleted_sockets_stop_firing(cli, scheduled: str) -> None:
    fired: list[str] = []
    scheduler = _scheduler(fired)
    t0 = 1_800_000_000.0
    scheduler.tick(t0)
    cli.ok("delete", "socket", "-n", "every5")
    cli.ok("update", "socket", "-n", "minutely", "--interval", "2")
    assert scheduler.tick(t0 + 1) == []  # minutely's schedule changed: counted from now
    assert scheduler.tick(t0 + 3) == ["minutely"]
    assert scheduler.tick(t0 + 10) == ["minutely"]
    assert "every5" not in fired


def test_lease_has_one_holder(scheduled: str) -> None:
    a, b = _scheduler([], "a"), _scheduler([], "b")
    assert a.hold_lease(100.0)
    assert not b.hold_lease(101.0)
    assert a.hold_lease(102.0)  # renewed
    assert b.hold_lease(108.0)  # a's lease ran out at 107
    assert not a.hold_lease(109.0)


def test_bad_cron_line_is_refused(cli, initialised_db: str) -> None:
    cli.ok("add", "queue", "-n", "q")
    cli.ok("add", "processor", "-n", "p", "-g", "/repo", "-m", "m")
    result = cli(
        "add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "f", "--cron", "99 * * * *"
    )
    assert result.code == 2 and "cron" in result.stderr


def _nodes(url: str, spec: dict[str, tuple[int, bool]]) -> None:
    from shellflow.model.base import utcnow
    from shellflow.model.db import session_scope
    from shellflow.model.infra import Node

    with session_scope(url) as session:
        for name, (cpus, alive) in spec.items():
            beat = utcnow() - (timedelta(0) if alive else timedelta(minutes=5))
            session.add(Node(name=name, hostname=f"{name}.host", cpus=cpus, heartbeat=beat))


def _placements(url: str) -> dict[str, str]:
    from sqlalchemy import select

    from shellflow.model.db import session_scope
    from shellflow.model.infra import Deployment

    with session_scope(url) as session:
        return {d.processor.name: d.hostname for d in session.scalars(select(Deployment))}


def _place(url: str, strategy: str) -> list[str]:
    from shellflow.engine.fleet.placement import place
    from shellflow.model.db import session_scope

    with session_scope(url) as session:
        return place(session, strategy)


@pytest.mark.parametrize(
    ("strategy", "expect"),
    [
        ("BALANCED", {"p1": "big.host", "p2": "big.host", "p3": "small.host"}),
        ("EFFICIENT", {"p1": "small.host", "p2": "small.host", "p3": "big.host"}),
    ],
)
def test_placement_strategies(
    cli, initialised_db: str, strategy: str, expect: dict[str, str]
) -> None:
    _nodes(initialised_db, {"big": (6, True), "small": (4, True), "dead": (64, False)})
    for name, cpus in (("p1", 2), ("p2", 2), ("p3", 4)):
        cli.ok("add", "processor", "-n", name, "-g", "/r", "-m", "m", "-c", str(cpus))
    cli.ok("add", "processor", "-n", "pinned", "-g", "/r", "-m", "m", "-h", "elsewhere")
    cli.ok("add", "processor", "-n", "huge", "-g", "/r", "-m", "m", "-c", "9")
    _place(initialised_db, strategy)
    placed = _placements(initialised_db)
    assert placed == expect  # never the dead node, never the pinned one, never beyond CPUs
    reason = cli.ok("ls", "processor", "-n", "huge", "--json").stdout
    assert "no live node has 9 free CPUs" in reason


def test_placements_move_off_dead_nodes(cli, initialised_db: str) -> None:
    _nodes(initialised_db, {"a": (4, True), "b": (2, True)})
    cli.ok("add", "processor", "-n", "p1", "-g", "/r", "-m", "m", "-c", "2")
    _place(initialised_db, "BALANCED")
    assert _placements(initialised_db) == {"p1": "a.host"}
    from shellflow.model.base import utcnow
    from shellflow.model.db import session_scope
    from shellflow.model.infra import Node

    with session_scope(initialised_db) as session:
        for node in session.query(Node):
            node.heartbeat = utcnow() - timedelta(minutes=5) if node.name == "a" else utcnow()
    changes = _place(initialised_db, "BALANCED")
    assert changes == ["moved p1 off a", "placed p1 on b"]
    assert _placements(initialised_db) == {"p1": "b.host"}


def test_only_the_lease_holder_places(cli, initialised_db: str) -> None:
    from shellflow.engine.fleet.scheduler import place_if_leader

    _nodes(initialised_db, {"a": (4, True), "b": (4, True)})
    cli.ok("add", "scheduler", "-n", "main", "-s", "EFFICIENT")
    cli.ok("add", "processor", "-n", "p1", "-g", "/r", "-m", "m", "-c", "1")
    cli.ok("add", "processor", "-n", "p2", "-g", "/r", "-m", "m", "-c", "1")
    first, second = _scheduler([], "first"), _scheduler([], "second")
    now = 1_800_000_000.0
    assert place_if_leader(first, now) == ["placed p1 on a", "placed p2 on a"]  # packed
    assert place_if_leader(second, now + 1) == []  # not the holder: places nothing
    assert _placements(initialised_db) == {"p1": "a.host", "p2": "a.host"}


NEVER = ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 * 30"]  # the last: seconds


@pytest.mark.parametrize("line", NEVER)
def test_a_cron_line_that_never_fires_is_refused(
    cli, initialised_db: str, tmp_path, line: str
) -> None:
    cli.ok("add", "queue", "-n", "q")
    cli.ok("add", "processor", "-n", "p", "-g", "/repo", "-m", "m")
    add = cli("add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "f", "--cron", line)
    cli.ok("add", "socket", "-n", "t", "-q", "q", "-pn", "p", "-t", "f", "--cron", "0 0 29 2 *")
    update = cli("update", "socket", "-n", "t", "--cron", line)
    compose = tmp_path / "never.yaml"
    compose.write_text(f"sockets:\n  s: {{queue: q, processor: p, task: f, cron: '{line}'}}\n")
    composed = cli("compose", "up", str(compose))
    for result in (add, update, composed):
        assert result.code == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "never fires" in result.stderr and "8 years" in result.stderr, result.stderr
    shown = [json.loads(line) for line in cli.ok("ls", "sockets", "--json").stdout.splitlines()]
    assert [(s["name"], s["cron"]) for s in shown] == [("t", "0 0 29 2 *")]  # leap days run


def _store_schedule(url: str, socket: str, **values: object) -> None:
    """Write a schedule straight into the database, past every check (as an old version,
    or a hand-edited row, may have left it)."""
    from sqlalchemy import update

    from shellflow.model.db import session_scope
    from shellflow.model.network import Socket

    with session_scope(url) as session:
        session.execute(update(Socket).where(Socket.name == socket).values(**values))


@pytest.mark.timeout(120)  # the tick used to loop forever on a negative interval
@pytest.mark.parametrize(
    "bad",
    [{"cron": "0 0 31 2 *"}, {"cron": "not a cron line"}, {"cron": None, "interval": 0},
     {"cron": None, "interval": -5}],
    ids=["never", "unreadable", "zero-interval", "negative-interval"],
)  # fmt: skip
def test_a_bad_stored_schedule_is_skipped_and_the_others_fire_on_time(
    cli, scheduled: str, bad: dict[str, object]
) -> None:
    _store_schedule(scheduled, "minutely", **bad)
    fired: list[str] = []
    schedulers = [_scheduler(fired, "s1"), _scheduler(fired, "s2")]
    t0 = 1_800_000_000.0
    assert schedulers[0].tick(t0) == []
    assert schedulers[1].tick(t0 + 1) == []
    assert schedulers[0].tick(t0 + 5.0) == ["every5"]
    assert schedulers[1].tick(t0 + 10.0) == ["every5"]
    for step in range(3, 14):  # every tick after: the others on time, the bad one never
        assert schedulers[step % 2].tick(t0 + 5.0 * step) == ["every5"]
    assert "minutely" not in fired
    shown = json.loads(cli.ok("ls", "socket", "-n", "minutely", "--json").stdout)
    assert len(shown["log"]) == 1, shown["log"]  # said once, not on every tick
    assert "scheduler skipped" in shown["log"][0]
    if bad.get("cron") == "0 0 31 2 *":
        assert "never fires" in shown["log"][0]
    # Its schedule changed through the checks: it runs again, counted from then.
    cli.ok("update", "socket", "-n", "minutely", "--interval", "2")
    assert "minutely" not in schedulers[0].tick(t0 + 71.0)
    assert "minutely" in schedulers[1].tick(t0 + 73.0)


@pytest.mark.timeout(120)
def test_a_long_missed_interval_fires_once_then_keeps_its_beat(scheduled: str) -> None:
    fired: list[str] = []
    scheduler = _scheduler(fired)
    t0 = 1_800_000_000.0
    scheduler.tick(t0)
    year = 365 * 86400.0
    assert "every5" in scheduler.tick(t0 + year + 2.0)  # 6 million beats missed: one call
    assert "every5" not in scheduler.tick(t0 + year + 4.9)
    assert "every5" in scheduler.tick(t0 + year + 5.0)  # back on the beat of t0


# -- the outbox: a due time's call is recorded before it is sent, and sent until taken ------


def _calls_of(socket: str) -> list[tuple[str, str]]:
    """The calls of a socket, as (id, state), oldest first."""
    from shellflow.model.listing import reader

    with reader(load_settings().db) as conn:
        rows = conn.query(
            "SELECT c.id, c.state FROM call c JOIN socket s ON s.id = c.socket_id"
            " WHERE s.name = ? ORDER BY c.created",
            [socket],
        )
    return [(str(i), str(state)) for i, state in rows]


def _events_of(call_id: str) -> list[str]:
    from shellflow.model.listing import reader

    with reader(load_settings().db) as conn:
        rows = conn.query("SELECT name FROM event WHERE call_id = ? ORDER BY created", [call_id])
    return [str(name) for (name,) in rows]


def _socket_id(socket: str) -> str:
    from shellflow.model.listing import reader

    with reader(load_settings().db) as conn:
        return str(conn.query("SELECT id FROM socket WHERE name = ?", [socket])[0][0])


def test_a_due_time_the_broker_refused_makes_one_call_sent_once_it_is_back(
    cli, scheduled: str
) -> None:
    from shellflow.model.call_writes import scheduled_call_id

    fired: list[str] = []
    scheduler = _scheduler(fired)
    broker = scheduler.transport
    assert isinstance(broker, StubTransport)
    t0 = 1_800_000_000.0
    scheduler.tick(t0)
    broker.refuse(3)  # the broker is away for the due time and the next two sends
    assert scheduler.tick(t0 + 5.0) == ["every5"]  # claimed: its call is recorded
    expected = scheduled_call_id(_socket_id("every5"), t0 + 5.0)
    assert _calls_of("every5") == [(expected, "pending")] and broker.messages == []
    assert _events_of(expected) == ["scheduled", "unsent"]
    assert scheduler.tick(t0 + 5.1) == []  # sent again: refused again
    assert _calls_of("every5") == [(expected, "pending")] and broker.messages == []
    assert scheduler.tick(t0 + 5.2) == [] and broker.refusals == 0 and broker.messages == []
    assert scheduler.tick(t0 + 5.3) == []  # the broker is back: it takes the call
    assert [m.call.call_id for m in broker.messages] == [expected]
    assert broker.messages[0].name == "every5"
    assert _events_of(expected) == ["scheduled", "unsent", "sent"]
    shown = cli.ok("ls", "call", "--id", expected).stdout  # what a user sees of the wait
    assert "unsent" in shown and "ConnectionRefusedError" in shown and "sent again" in shown
    assert scheduler.tick(t0 + 5.4) == []  # taken: never sent again
    assert scheduler.tick(t0 + 9.9) == []
    assert len(broker.messages) == 1 and fired == ["every5"]
    assert _calls_of("every5") == [(expected, "pending")]  # until a worker takes it
    assert scheduler.tick(t0 + 10.0) == ["every5"]  # the next due time: its own call
    assert len(_calls_of("every5")) == 2 and len(broker.messages) == 2


def test_only_the_lease_holder_sends_a_refused_call_again(scheduled: str) -> None:
    first, second = _scheduler([], "first"), _scheduler([], "second")
    t0 = 1_800_000_000.0
    first.tick(t0)
    first.tick(t0 + 4.0)  # first holds the lease until t0 + 9
    second.transport.refuse(1)  # type: ignore[attr-defined]
    assert second.tick(t0 + 5.0) == ["every5"]  # second claimed it; its send failed
    assert second.tick(t0 + 5.1) == []  # not the lease holder: sends nothing again
    assert second.transport.messages == []  # type: ignore[attr-defined]
    assert first.tick(t0 + 5.2) == []
    assert [m.name for m in first.transport.messages] == ["every5"]  # type: ignore[attr-defined]
    assert len(_calls_of("every5")) == 1


def test_a_claim_whose_scheduler_died_before_sending_is_sent_later(scheduled: str) -> None:
    """Claimed and recorded, then nothing (the scheduler stopped between its commit and its
    send): after ORPHANED_AFTER seconds the lease holder sends it."""
    from datetime import UTC, datetime

    from shellflow.engine.fleet import outbox
    from shellflow.engine.fleet.scheduler import Scheduler

    settings = load_settings()
    dead = Scheduler(settings, transport=StubTransport(), name="dead")
    t0 = 1_800_000_000.0
    dead.tick(t0)
    with dead.engine.begin() as conn:  # the claim alone, as a scheduler killed after it
        [claimed] = dead._claim_due(conn, t0 + 5.0)
    assert outbox.unsent(settings) == []  # its scheduler may still be sending it
    later = datetime.now(UTC) + timedelta(seconds=outbox.ORPHANED_AFTER + 1)
    assert outbox.unsent(settings, later) == [claimed]
    broker = StubTransport()
    assert outbox.resend(settings, broker, later) == [claimed.call_id]
    assert [m.call.call_id for m in broker.messages] == [claimed.call_id]
    assert outbox.unsent(settings, later) == []
    assert _calls_of("every5") == [(claimed.call_id, "pending")]


def test_a_waiting_call_cancelled_or_whose_socket_is_deleted_is_not_sent(
    cli, scheduled: str
) -> None:
    fired: list[str] = []
    scheduler = _scheduler(fired)
    broker = scheduler.transport
    assert isinstance(broker, StubTransport)
    t0 = 1_800_000_000.0
    scheduler.tick(t0)
    broker.refuse(1)
    assert sorted(scheduler.tick(t0 + 60.0)) == ["every5", "minutely"]  # one refused
    [(waiting, _)] = [c for c in _calls_of("every5") + _calls_of("minutely") if c[1] == "pending"
                      and "unsent" in _events_of(c[0])]  # fmt: skip
    other = "minutely" if _calls_of("every5")[0][0] == waiting else "every5"
    if len(broker.messages) == 1:  # the other one went
        assert broker.messages[0].name == other
    gone = "every5" if other == "minutely" else "minutely"
    assert cli("delete", "socket", "-n", gone).code == 4  # its call waits: refused
    try:
        cli.ok("delete", "socket", "-n", gone, "--force")  # drains its queue: starts the broker
    finally:
        cli.ok("broker", "stop")
    scheduler.tick(t0 + 60.1)
    assert len(broker.messages) == 1  # the deleted socket's call was not sent
    from shellflow.model.listing import reader

    with reader(load_settings().db) as conn:
        state, note = conn.query(
            "SELECT c.state, e.note FROM call c JOIN event e ON e.call_id = c.id"
            " WHERE c.id = ? AND e.name = 'revoked'",
            [waiting],
        )[0]
    assert state == "revoked" and "deleted" in note


def test_a_due_time_recorded_twice_is_one_call(scheduled: str) -> None:
    """The call id is a function of socket and due time: recording it again (a claim made
    again after a crash, say) adds no second call and no second event."""
    from shellflow.engine.fleet import outbox
    from shellflow.engine.fleet.scheduler import Scheduler
    from shellflow.model.call_writes import scheduled_call_id

    scheduler = Scheduler(load_settings(), transport=StubTransport())
    socket_id, due = _socket_id("every5"), 1_800_000_005.0
    with scheduler.engine.begin() as conn:
        first = outbox.record(conn, socket_id, "every5", None, due)
        again = outbox.record(conn, socket_id, "every5", None, due)
    assert first is not None and first.call_id == scheduled_call_id(socket_id, due)
    assert again is None
    assert scheduled_call_id(socket_id, due + 5.0) != first.call_id
    assert _calls_of("every5") == [(first.call_id, "pending")]
    assert _events_of(first.call_id) == ["scheduled"]
