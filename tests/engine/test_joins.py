"""Join state under row locks, straight on SQLite and PostgreSQL (no broker, no worker)."""

from __future__ import annotations

import multiprocessing
import random
from typing import Any

import pytest

from shellflow.engine.dataflow.joins import Arrival, arrive
from shellflow.engine.dataflow.plugs import POSITIONAL, Plugs, join_slots
from shellflow.model.db import get_engine

SLOTS = frozenset({"one", "two", POSITIONAL})


@pytest.fixture
def target(cli: Any, initialised_db: str) -> str:
    """A socket to join at (the join state refers to it)."""
    cli.ok("add", "queue", "-n", "q")
    cli.ok("add", "processor", "-n", "p", "-g", "/nowhere", "-m", "m")
    cli.ok("add", "socket", "-n", "s", "-q", "q", "-pn", "p", "-t", "f")
    with get_engine(initialised_db).connect() as conn:
        return str(conn.exec_driver_sql("SELECT id FROM socket WHERE name = 's'").scalar_one())


def rows(url: str) -> int:
    with get_engine(url).connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM join_state").scalar_one())


def test_which_targets_join() -> None:
    assert join_slots(False, ["one", "two"]) == {"one", "two"}
    assert join_slots(False, ["one", "one"]) == frozenset()  # two sources of one argument
    assert join_slots(False, ["one", None]) == frozenset()  # positional plugs fire at once
    assert join_slots(True, ["one", None]) == {"one", POSITIONAL}  # unless the target waits
    assert join_slots(True, [None, None]) == frozenset()


def test_plugs_are_read_as_they_are_now(cli: Any, initialised_db: str, target: str) -> None:
    """What leaves a socket, and whether its targets join, follows every change."""
    cli.ok("add", "socket", "-n", "a", "-q", "q", "-pn", "p", "-t", "g")
    cli.ok("add", "socket", "-n", "b", "-q", "q", "-pn", "p", "-t", "h")
    with get_engine(initialised_db).connect() as conn:
        source = str(conn.exec_driver_sql("SELECT id FROM socket WHERE name = 'a'").scalar_one())
    plugs = Plugs(initialised_db, ttl=0)
    assert plugs.outlets(source) == []
    cli.ok("add", "plug", "-n", "a1", "-q", "q", "-s", "a", "-t", "s", "-a", "one")
    (outlet,) = plugs.outlets(source)
    assert (outlet.name, outlet.type, outlet.argument, outlet.target.name) == (
        "a1",
        "RESULT",
        "one",
        "s",
    )
    assert outlet.target.queue == "q" and outlet.target.function == "f"
    assert not outlet.joins  # the only input of its target
    cli.ok("add", "plug", "-n", "b1", "-q", "q", "-s", "b", "-t", "s", "-a", "two")
    cli.ok("add", "plug", "-n", "b2", "-q", "q", "-s", "b", "-t", "s", "--type", "error")
    (outlet,) = plugs.outlets(source)
    assert outlet.joins and outlet.slots == {"one", "two"}
    cli.ok("update", "socket", "-n", "s", "--wait")
    assert plugs.outlets(source)[0].slots == {"one", "two", POSITIONAL}
    cli.ok("add", "plug", "-n", "a2", "-q", "q", "-s", "a", "-t", "b", "--type", "error")
    assert [(o.name, o.type, o.joins) for o in plugs.outlets(source)] == [
        ("a1", "RESULT", True), ("a2", "ERROR", False)
    ]  # fmt: skip
    cli.ok("delete", "plug", "-n", "a1")
    assert [o.name for o in plugs.outlets(source)] == ["a2"]


def test_a_join_fires_once_with_its_values_and_cleans_up(initialised_db: str, target: str) -> None:
    engine = get_engine(initialised_db)
    fired: list[dict[str, Arrival]] = []
    assert not arrive(engine, "f1", target, "one", Arrival("a/p1", "a", 1), SLOTS, fired.append)
    # a redelivered source call does not arrive twice
    assert not arrive(engine, "f1", target, "one", Arrival("a/p1", "a", 1), SLOTS, fired.append)
    assert not arrive(engine, "f1", target, "two", Arrival("b/p2", "b", [2]), SLOTS, fired.append)
    # another flow run does not mix in
    assert not arrive(engine, "f2", target, "*", Arrival("x/p3", "x", 9), SLOTS, fired.append)
    assert rows(initialised_db) == 2

    def broken(_: dict[str, Arrival]) -> None:
        raise OSError("broker down")

    with pytest.raises(OSError):  # sending failed: the set stays chosen, the arrival can retry
        arrive(engine, "f1", target, "*", Arrival("c/p3", "c", {"v": 3}), SLOTS, broken)
    assert fired == [] and rows(initialised_db) == 2
    assert arrive(engine, "f1", target, "*", Arrival("c/p3", "c", {"v": 3}), SLOTS, fired.append)
    assert [{k: v.value for k, v in got.items()} for got in fired] == [
        {"one": 1, "two": [2], "*": {"v": 3}}
    ]
    assert rows(initialised_db) == 1  # f1 is gone, f2 still waits


def lock_is_free(engine: Any, flow: str, target: str) -> None:
    """Take the lock an arrival takes, from another connection, without waiting for it."""
    from sqlalchemy import select

    from shellflow.engine.dataflow.joins import JOIN

    if engine.dialect.name == "sqlite":
        import sqlite3

        conn = sqlite3.connect(engine.url.database, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # "database is locked" while a writer holds it
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    with engine.connect() as conn:
        where = (JOIN.c.flow == flow) & (JOIN.c.target_id == target)
        conn.execute(select(JOIN.c.id).where(where).with_for_update(nowait=True)).all()
        conn.rollback()


def test_a_join_sends_with_no_lock_held(initialised_db: str, target: str) -> None:
    """The call is sent after the choice commits: a slow or retrying broker holds no lock
    (on SQLite the write lock is the whole database's)."""
    engine = get_engine(initialised_db)
    seen: list[dict[str, Arrival]] = []

    def send(inputs: dict[str, Arrival]) -> None:
        lock_is_free(engine, "f1", target)
        # another join can be changed meanwhile
        assert not arrive(engine, "f2", target, "one", Arrival("x/1", "x", 0), SLOTS, seen.append)
        seen.append(inputs)

    for slot, key in (("one", "a/1"), ("two", "b/2"), (POSITIONAL, "c/3")):
        fired = arrive(engine, "f1", target, slot, Arrival(key, key[0], key), SLOTS, send)
    assert fired and [sorted(got) for got in seen] == [sorted(SLOTS)]
    assert rows(initialised_db) == 1  # f1 gone once sent; f2 waits


def test_a_set_whose_send_failed_is_sent_again_or_released(
    initialised_db: str, target: str
) -> None:
    """A failed send keeps the set chosen (no later arrival takes its values) until the
    same arrival sends it again; given up, the others wait as before it came."""
    from shellflow.engine.dataflow.joins import release

    engine = get_engine(initialised_db)
    fired: list[dict[str, Arrival]] = []
    two = frozenset({"one", "two"})

    def broken(_: dict[str, Arrival]) -> None:
        raise OSError("broker down")

    def values() -> list[dict[str, Any]]:
        return [{k: v.value for k, v in got.items()} for got in fired]

    assert not arrive(engine, "f", target, "one", Arrival("a/1", "a", 1), two, fired.append)
    with pytest.raises(OSError):
        arrive(engine, "f", target, "two", Arrival("b/2", "b", 2), two, broken)
    # chosen, not sent: a second value of "two" waits rather than taking "one" again
    assert not arrive(engine, "f", target, "two", Arrival("c/2", "c", 22), two, fired.append)
    # the same arrival again (the plug's retry, or its source call redelivered): sent
    assert arrive(engine, "f", target, "two", Arrival("b/2", "b", 2), two, fired.append)
    assert values() == [{"one": 1, "two": 2}]
    # c waits for a new "one"
    assert arrive(engine, "f", target, "one", Arrival("d/1", "d", 11), two, fired.append)
    assert values()[1:] == [{"one": 11, "two": 22}] and rows(initialised_db) == 0

    # Given up after its retries: the arrival is dropped, the others wait again.
    assert not arrive(engine, "g", target, "one", Arrival("a/1", "a", 1), two, fired.append)
    with pytest.raises(OSError):
        arrive(engine, "g", target, "two", Arrival("b/2", "b", 2), two, broken)
    assert release(engine, "g", target, "b/2")
    assert not release(engine, "g", target, "b/2")  # nothing left to give up
    assert arrive(engine, "g", target, "two", Arrival("e/2", "e", 5), two, fired.append)
    assert values()[2:] == [{"one": 1, "two": 5}] and rows(initialised_db) == 0


def test_a_bad_join_ttl_is_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shellflow.engine.dataflow.joins import JOIN_TTL, join_ttl

    monkeypatch.setenv("SHELLFLOW_JOIN_TTL", "a week")
    with caplog.at_level("WARNING", logger="shellflow.engine.dataflow.joins"):
        assert join_ttl() == JOIN_TTL
    assert "SHELLFLOW_JOIN_TTL='a week' is not a number of seconds" in caplog.text


MANY = frozenset(f"a{i}" for i in range(12))


def _arrive_all(url: str, target: str, items: list[tuple[str, str, int]], go: Any,
                out: Any) -> None:  # fmt: skip
    engine = get_engine(url)
    engine.dispose(close=False)  # forked: leave the parent's connections to the parent
    go.wait()
    for flow, slot, value in items:

        def fire(got: dict[str, Arrival], flow: str = flow) -> None:
            out.put((flow, {name: arrival.value for name, arrival in got.items()}))

        arrive(engine, flow, target, slot, Arrival(f"{flow}/{slot}", flow, value), MANY, fire)


def test_many_processes_fire_each_join_exactly_once(initialised_db: str, target: str) -> None:
    """Six processes take turns on the same few flow runs at the same moments."""
    flows = [f"run{n}" for n in range(10)]
    items = []
    for n, flow in enumerate(flows):
        slots = sorted(MANY)
        random.shuffle(slots)
        items += [(flow, slot, n * 100 + int(slot[1:])) for slot in slots]
    context = multiprocessing.get_context("fork")
    go, out = context.Event(), context.Queue()
    workers = [
        context.Process(target=_arrive_all, args=(initialised_db, target, items[k::6], go, out))
        for k in range(6)
    ]
    for worker in workers:
        worker.start()
    go.set()
    fired = [out.get(timeout=60) for _ in flows]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert out.empty()  # no join fired twice
    assert sorted(flow for flow, _ in fired) == sorted(flows)
    for flow, values in fired:
        n = int(flow[3:])
        assert values == {name: n * 100 + int(name[1:]) for name in MANY}
    assert rows(initialised_db) == 0


def test_joins_of_runs_that_never_complete_are_swept(
    initialised_db: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join still missing an argument after the age limit is forgotten; a younger one,
    or one that keeps receiving arguments, stays and still fires."""
    from datetime import timedelta

    from shellflow.config import load_settings
    from shellflow.engine.dataflow.joins import JOIN, sweep
    from shellflow.engine.fleet.scheduler import Scheduler, sweep_joins_if_leader
    from shellflow.engine.transport.transports.stub import StubTransport
    from shellflow.model.base import utcnow

    engine = get_engine(initialised_db)
    fired: list[dict[str, Arrival]] = []
    for flow in ("abandoned", "recent", "older"):
        arrive(engine, flow, target, "one", Arrival(f"{flow}/1", "c1", 1), SLOTS, fired.append)
    with engine.begin() as conn:  # an hour and two days without a change
        for flow, age in (("older", timedelta(hours=1)), ("abandoned", timedelta(days=2))):
            conn.execute(
                JOIN.update().where(JOIN.c.flow == flow).values(lastupdated=utcnow() - age)
            )
    assert sweep(engine, max_age=24 * 3600) == [("abandoned", target)]
    assert rows(initialised_db) == 2
    # The agents' scheduler sweeps with the configured age limit (seconds).
    monkeypatch.setenv("SHELLFLOW_JOIN_TTL", "600")
    scheduler = Scheduler(load_settings(), transport=StubTransport(), name="sweeper")
    assert sweep_joins_if_leader(scheduler) == 1  # "older": an hour > ten minutes
    assert sweep_joins_if_leader(scheduler) == 0  # not again before SWEEP_EVERY
    for slot, key in (("two", "recent/2"), (POSITIONAL, "recent/3")):
        arrive(engine, "recent", target, slot, Arrival(key, "c2", 2), SLOTS, fired.append)
    assert len(fired) == 1 and rows(initialised_db) == 0
