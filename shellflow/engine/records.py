"""Call records: one call row per execution and its events, written by the worker.

The call's id is the broker message's task id, so a redelivered message updates the same
row instead of creating a second call. Each step is written in one short transaction
before the message is acknowledged (the worker acknowledges after the task returns), so a
worker killed at any point leaves either a complete record or a message that comes back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlalchemy.dialects import postgresql, sqlite

import shellflow.model.tables  # noqa: F401  (registers every table on Base.metadata)
from shellflow.model.base import Base, new_id, utcnow
from shellflow.model.db import get_engine

CALL = Base.metadata.tables["call"]
EVENT = Base.metadata.tables["event"]
LOG = Base.metadata.tables["log"]


@dataclass(frozen=True)
class CallStart:
    call_id: str
    socket_id: str | None
    task_id: str | None
    name: str
    args: Any
    flow: str | None
    parent: str | None
    hostname: str
    worker: str
    owner: str | None = None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)


class Recorder:
    """Writes records for one process (each prefork child opens its own connections)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pid = os.getpid()
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._engine = get_engine(self.url)
            self._engine.dispose(close=False)  # never reuse a parent's connections after fork
        return self._engine

    def _upsert_call(self, values: dict[str, Any]) -> Any:
        dialect = self.engine.dialect.name
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(CALL).values(**values)
        changes = {k: stmt.excluded[k] for k in values if k not in ("id", "created")}
        return stmt.on_conflict_do_update(index_elements=["id"], set_=changes)

    def _event(self, call_id: str, name: str, note: str) -> Any:
        return insert(EVENT).values(
            id=new_id(), created=utcnow(), name=name, note=note, call_id=call_id
        )

    def started(self, start: CallStart, redelivered: bool = False) -> None:
        now = utcnow()
        values = {
            "id": start.call_id, "created": now, "lastupdated": now, "name": start.name,
            "owner": start.owner, "state": "running", "socket_id": start.socket_id,
            "task_id": start.task_id, "parent": start.parent, "tracking": start.flow,
            "celeryid": start.call_id, "args": _json(start.args), "hostname": start.hostname,
            "worker": start.worker, "started": now, "finished": None, "result": None,
            "error": None, "traceback": None,
        }  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(self._upsert_call(values))
            if not redelivered:
                conn.execute(
                    self._event(start.call_id, "received", f"Received call of {start.name}")
                )
            conn.execute(self._event(start.call_id, "prerun", f"Prerun for {start.name}"))

    def finished(self, call_id: str, name: str, result: Any, output: list[str]) -> None:
        self._end(call_id, {"state": "finished", "result": _json(result)}, "postrun",
                  f"Postrun for {name}", output)  # fmt: skip

    def failed(
        self, call_id: str, name: str, error: str, traceback: str, output: list[str]
    ) -> None:
        self._end(call_id, {"state": "failed", "error": error, "traceback": traceback}, "failure",
                  f"Failure of {name}: {error}"[:2000], output)  # fmt: skip

    def event(self, call_id: str, name: str, note: str, state: str | None = None) -> None:
        with self.engine.begin() as conn:
            if state:
                conn.execute(
                    update(CALL)
                    .where(CALL.c.id == call_id)
                    .values(state=state, lastupdated=utcnow())
                )
            conn.execute(self._event(call_id, name, note))

    def _end(
        self, call_id: str, values: dict[str, Any], event: str, note: str, output: list[str]
    ) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                update(CALL)
                .where(CALL.c.id == call_id)
                .values(finished=now, lastupdated=now, **values)
            )
            conn.execute(self._event(call_id, event, note))
            if output:
                conn.execute(insert(LOG), [
                    {"id": new_id(), "created": now, "oid": call_id, "discriminator": "call",
                     "text": line, "source": "stdout"}
                    for line in output
                ])  # fmt: skip
