"""Joins: a target waits until each of its arguments has arrived for one flow run.

Each arrival is one short transaction on the model database that holds the lock of the
(flow run, target) row of ``join_state`` while it reads, adds to and writes the values that
have arrived. On PostgreSQL the row is made if missing (``INSERT ... ON CONFLICT DO
NOTHING``) and then locked with ``SELECT ... FOR UPDATE``; on SQLite the transaction starts
with ``BEGIN IMMEDIATE``, which holds the database's write lock. Whichever arrival completes
a set of arguments sends the target's call while still holding the lock and removes what it
consumed (the row itself when nothing is left), so every set fires exactly once, whatever
the order of arrival and however many workers receive them.

If sending fails the transaction rolls back and the state is as it was; a source call that
is delivered twice (its worker died before acknowledging it) adds its value once, because
each arrival carries a key made of the source call and the plug.

The rows of flow runs that never complete (an argument that never comes) are removed by
:func:`sweep` once unchanged for :func:`join_ttl` seconds; the agents' scheduler runs it
(``shellflow.engine.scheduler``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

import shellflow.model.tables  # noqa: F401  (registers every table on Base.metadata)
from shellflow.model.base import Base, new_id, utcnow

JOIN = Base.metadata.tables["join_state"]
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
    first) inside the lock and forget them. True when this arrival fired the join."""
    where = (JOIN.c.flow == flow) & (JOIN.c.target_id == target_id)
    for _ in range(ATTEMPTS):
        with engine.connect() as conn:
            _begin(conn)
            _ensure_row(conn, flow, target_id)
            row = conn.execute(
                select(JOIN.c.id, JOIN.c.arrivals).where(where).with_for_update()
            ).first()
            if row is None:  # fired and removed between our insert and our lock: again
                conn.rollback()
                continue
            state: dict[str, list[dict[str, Any]]] = json.loads(row.arrivals or "{}")
            waiting = state.setdefault(slot, [])
            if any(entry["key"] == arrival.key for entry in waiting):
                conn.rollback()  # a redelivered source call: its value is already here
                return False
            waiting.append({"key": arrival.key, "call": arrival.call, "value": arrival.value})
            fired = all(state.get(name) for name in slots)
            if fired:
                fire({name: Arrival(**state[name].pop(0)) for name in sorted(slots)})
                # Values of arguments the target no longer joins on are dropped with the set.
                state = {name: state[name] for name in slots if state.get(name)}
            if state:
                text = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
                conn.execute(
                    update(JOIN).where(JOIN.c.id == row.id).values(
                        arrivals=text, lastupdated=utcnow()
                    )
                )  # fmt: skip
            else:
                conn.execute(delete(JOIN).where(JOIN.c.id == row.id))
            conn.commit()
            return fired
    raise RuntimeError(f"join state of flow {flow} kept vanishing; gave up")


JOIN_TTL_ENV = "SHELLFLOW_JOIN_TTL"
JOIN_TTL = 7 * 24 * 3600.0  # seconds a join may wait for its missing arguments


def join_ttl() -> float:
    """How long a join waits (``SHELLFLOW_JOIN_TTL`` seconds, default a week)."""
    import os

    text = os.environ.get(JOIN_TTL_ENV, "").strip()
    try:
        return max(1.0, float(text)) if text else JOIN_TTL
    except ValueError:
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
