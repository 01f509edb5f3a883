"""Joins: a target waits until each of its arguments has arrived for one flow run.

Each arrival is one short transaction on the model database that holds the lock of the
(flow run, target) row of ``join_state`` while it reads, adds to and writes the values that
have arrived. On PostgreSQL the row is made if missing (``INSERT ... ON CONFLICT DO
NOTHING``) and then locked with ``SELECT ... FOR UPDATE``; on SQLite the transaction starts
with ``BEGIN IMMEDIATE``, which holds the database's write lock. Whichever arrival completes
a set of arguments marks that set's values *sending* (with one token) in the same
transaction, so no other arrival can take them: every set is chosen exactly once, whatever
the order of arrival and however many workers receive them.

The target's call is sent only after that transaction commits, so no lock is held while
the broker is slow or a publish is retried (on SQLite that lock is the whole database's:
every arrival of every join, and every other writer, waited for each publish). Once it is
sent, a second short transaction removes the set's values (the row itself when nothing is
left).
The call's id is fixed by the set's values (``shellflow.engine.dataflow.plugs``), so sending a set
again sends the same call:

- if sending fails, :func:`arrive` raises and the set stays marked; the same arrival tried
  again (the plug's retries) finds its value marked and sends the set again. When the
  plug gives up, :func:`release` unmarks the set and drops the failed arrival's value, so
  the others wait as they did before it came (the arrival goes to the dead-letter queue);
- if the worker dies between the commit and the send, its source call is redelivered
  (messages are acknowledged late) and its arrival, finding its value marked, sends the set;
- if it dies after the send but before the values are removed, the redelivered arrival
  sends the same call again, which its records count once (as a plug's own repeated send,
  and as the old design did when a worker died between its send and its commit).

A source call that is delivered twice while its value waits adds that value once, because
each arrival carries a key made of the source call and the plug.

The rows of flow runs that never complete (an argument that never comes) are removed by
:func:`sweep` once unchanged for :func:`join_ttl` seconds; the agents' scheduler runs it
(``shellflow.engine.fleet.scheduler``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

import shellflow.model.tables  # noqa: F401  (registers every table on Base.metadata)
from shellflow.model.base import Base, new_id, utcnow

JOIN = Base.metadata.tables["join_state"]
log = logging.getLogger(__name__)
# A row can vanish between our INSERT (skipped: it existed) and our lock (its join fired
# and removed it); then we start again and make a new one. More than a few in a row means
# something else is wrong.
ATTEMPTS = 20


@dataclass(frozen=True)
class Arrival:
    """A value for one argument of a join: ``key`` names the source call and plug."""

    key: str
    call: str
    value: Any


def _begin(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        # pysqlite starts transactions lazily and deferred; take the write lock up front.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _ensure_row(conn: Connection, flow: str, target_id: str) -> None:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    now = utcnow()
    stmt = module.insert(JOIN).values(
        id=new_id(), created=now, lastupdated=now, flow=flow, target_id=target_id, arrivals="{}"
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["flow", "target_id"]))


def arrive(
    engine: Engine,
    flow: str,
    target_id: str,
    slot: str,
    arrival: Arrival,
    slots: frozenset[str],
    fire: Callable[[dict[str, Arrival]], None],
) -> bool:
    """Keep ``arrival`` for ``slot``; when every slot has a value, ``fire`` them (oldest
    first) once the choice is committed, then forget them. True when this arrival fired the
    join (or sent again a set it belongs to that was not sent yet).

    No transaction is open while ``fire`` runs. If it raises, the error is raised here and
    the set stays chosen: calling again with the same arrival sends it again, and
    :func:`release` gives it up.
    """
    chosen = _choose(engine, flow, target_id, slot, arrival, slots)
    if chosen is None:
        return False
    token, inputs = chosen
    fire(inputs)
    try:
        _forget(engine, flow, target_id, token, slots)
    except Exception as exc:  # sent: never send it again for this; the sweep removes it
        log.warning(
            "join of flow %s at %s: call sent, its values not removed (the sweep will): %s: %s",
            flow, target_id, type(exc).__name__, exc,
        )  # fmt: skip
    return True


def release(engine: Engine, flow: str, target_id: str, key: str) -> bool:
    """Give up sending the set the arrival ``key`` belongs to: its other values wait again
    and the arrival's own is dropped (it went to the dead-letter queue), as if it had never
    come. False when there was no such set."""

    def change(state: dict[str, list[dict[str, Any]]]) -> bool:
        entry = _find(state, key)
        if entry is None:
            return False
        token = entry.get(SENDING)
        for entries in state.values():
            entries[:] = [e for e in entries if e["key"] != key]
            for e in entries:
                if token is not None and e.get(SENDING) == token:
                    del e[SENDING]
        return True

    return _change(engine, flow, target_id, change)


# The mark of a value chosen for a set whose call is not sent yet (a field of its entry, so
# no argument's name can collide with it).
SENDING = "sending"


def _find(state: dict[str, list[dict[str, Any]]], key: str) -> dict[str, Any] | None:
    return next((e for entries in state.values() for e in entries if e["key"] == key), None)


def _arrival(entry: dict[str, Any]) -> Arrival:
    return Arrival(key=entry["key"], call=entry["call"], value=entry["value"])


def _locked(conn: Connection, flow: str, target_id: str) -> Any:
    where = (JOIN.c.flow == flow) & (JOIN.c.target_id == target_id)
    return conn.execute(select(JOIN.c.id, JOIN.c.arrivals).where(where).with_for_update()).first()


def _write(conn: Connection, row_id: Any, state: dict[str, list[dict[str, Any]]]) -> None:
    state = {name: entries for name, entries in state.items() if entries}
    if state:
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
        conn.execute(
            update(JOIN).where(JOIN.c.id == row_id).values(arrivals=text, lastupdated=utcnow())
        )
    else:
        conn.execute(delete(JOIN).where(JOIN.c.id == row_id))


def _choose(
    engine: Engine, flow: str, target_id: str, slot: str, arrival: Arrival,
    slots: frozenset[str],
) -> tuple[str, dict[str, Arrival]] | None:  # fmt: skip
    """Add the arrival; the set to send (its token and values), if it completed one or
    belongs to one not sent yet. One committed transaction under the row's lock."""
    for _ in range(ATTEMPTS):
        with engine.connect() as conn:
            _begin(conn)
            _ensure_row(conn, flow, target_id)
            row = _locked(conn, flow, target_id)
            if row is None:  # fired and removed between our insert and our lock: again
                conn.rollback()
                continue
            state: dict[str, list[dict[str, Any]]] = json.loads(row.arrivals or "{}")
            known = _find(state, arrival.key)
            if known is not None:
                conn.rollback()
                token = known.get(SENDING)
                if token is None:  # a redelivered source call: its value already waits
                    return None
                # Chosen before, not sent yet (that send failed, or its worker died).
                return token, {
                    name: _arrival(e)
                    for name, entries in state.items()
                    for e in entries
                    if e.get(SENDING) == token
                }
            state.setdefault(slot, []).append(
                {"key": arrival.key, "call": arrival.call, "value": arrival.value}
            )
            free = {name: [e for e in state.get(name, []) if SENDING not in e] for name in slots}
            chosen = None
            if all(free.values()):
                token = new_id()
                for name in slots:
                    free[name][0][SENDING] = token
                chosen = token, {name: _arrival(free[name][0]) for name in sorted(slots)}
            _write(conn, row.id, state)
            conn.commit()
            return chosen
    raise RuntimeError(f"join state of flow {flow} kept vanishing; gave up")


def _forget(engine: Engine, flow: str, target_id: str, token: str, slots: frozenset[str]) -> None:
    """Remove a sent set's values; values of arguments the target no longer joins on go
    with it."""

    def change(state: dict[str, list[dict[str, Any]]]) -> bool:
        for name in list(state):
            if name in slots:
                state[name] = [e for e in state[name] if e.get(SENDING) != token]
            elif not any(SENDING in e for e in state[name]):
                del state[name]
        return True

    _change(engine, flow, target_id, change)


def _change(
    engine: Engine, flow: str, target_id: str,
    change: Callable[[dict[str, list[dict[str, Any]]]], bool],
) -> bool:  # fmt: skip
    """Apply ``change`` to the row's state under its lock (nothing when there is no row)."""
    with engine.connect() as conn:
        _begin(conn)
        row = _locked(conn, flow, target_id)
        if row is None:
            conn.rollback()
            return False
        state: dict[str, list[dict[str, Any]]] = json.loads(row.arrivals or "{}")
        if not change(state):
            conn.rollback()
            return False
        _write(conn, row.id, state)
        conn.commit()
        return True


JOIN_TTL_ENV = "SHELLFLOW_JOIN_TTL"
JOIN_TTL = 7 * 24 * 3600.0  # seconds a join may wait for its missing arguments


def join_ttl() -> float:
    """How long a join waits (``SHELLFLOW_JOIN_TTL`` seconds, default a week)."""
    import os

    text = os.environ.get(JOIN_TTL_ENV, "").strip()
    try:
        return max(1.0, float(text)) if text else JOIN_TTL
    except ValueError:
        log.warning("%s=%r is not a number of seconds; joins wait %g s", JOIN_TTL_ENV, text,
                    JOIN_TTL)  # fmt: skip
        return JOIN_TTL


def sweep(engine: Engine, max_age: float, now: datetime | None = None) -> list[tuple[str, str]]:
    """Forget the joins of flow runs that never completed: every ``join_state`` row not
    changed for ``max_age`` seconds. Returns the (flow run, target socket id) removed.

    A row is changed by every arrival, so an old row is a join some argument never reached
    (its source failed without an ERROR plug, a plug was removed, a run was abandoned);
    without this sweep such rows, and the values they hold, would stay for ever. Each row is
    deleted under the same condition it was selected by, so an arrival racing the sweep
    (which refreshes ``lastupdated``) keeps its row.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=max_age)
    old = (JOIN.c.lastupdated < cutoff) | (JOIN.c.lastupdated.is_(None) & (JOIN.c.created < cutoff))
    removed = []
    with engine.begin() as conn:
        rows = conn.execute(select(JOIN.c.id, JOIN.c.flow, JOIN.c.target_id).where(old)).all()
        for row in rows:
            gone = conn.execute(delete(JOIN).where((JOIN.c.id == row.id) & old)).rowcount
            if gone:
                removed.append((str(row.flow), str(row.target_id)))
    return removed
