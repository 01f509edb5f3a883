"""The result-signing key (made once, rotated with a grace period) and the checks callers
make (``shellflow.engine.transport.result_signing``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shellflow.engine.transport import result_signing as signing
from shellflow.model import result_keys
from shellflow.model.result_keys import KeyRing


@pytest.fixture
def db(initialised_db: str) -> str:
    result_keys._cache.rings.clear()
    return initialised_db


def _meta(**changes: Any) -> dict[str, Any]:
    meta = {"status": "SUCCESS", "result": {"n": [1, 2.5, "é"]}, "traceback": None,
            "task_id": "c1", "name": "s.echo", "args": ["x"], "kwargs": {"k": 1}}  # fmt: skip
    return {**meta, **changes}


def test_the_key_is_made_once_and_rotation_keeps_the_old_one_for_a_grace_period(db: str) -> None:
    first = result_keys.ensure(db)
    assert result_keys.ensure(db) == first and len(first.current) == result_keys.KEY_BYTES
    rotated = result_keys.rotate(db)
    assert rotated.previous == first.current and rotated.current != first.current
    assert rotated.accepted() == (rotated.current, first.current)
    later = datetime.now(UTC) + timedelta(seconds=result_keys.GRACE + 1)
    assert rotated.accepted(later) == (rotated.current,)
    again = result_keys.rotate(db)
    assert again.accepted() == (again.current, rotated.current)  # the first key is gone


def test_a_caller_takes_only_results_signed_by_the_deployment(db: str) -> None:
    ring = result_keys.ensure(db)
    signed = signing.sign(ring, _meta())
    assert signing.trusted(db, signed, "c1")
    # Another call's result, a changed field, no signature, another deployment's key: none.
    assert not signing.trusted(db, signed, "c2")
    for field, value in (("result", "FORGED"), ("status", "FAILURE"), ("args", ["y"]),
                         ("name", "s.other"), ("task_id", "c2")):  # fmt: skip
        assert not signing.trusted(db, {**signed, field: value})
    assert not signing.trusted(db, _meta())
    assert not signing.trusted(db, signing.sign(KeyRing(b"k" * 32), _meta()))
    # Statuses that end nothing are not checked: no caller acts on them.
    assert signing.trusted(db, _meta(status="STARTED"))


def test_a_result_signed_before_a_rotation_is_still_taken(db: str) -> None:
    old = result_keys.ensure(db)
    before = signing.sign(old, _meta())
    assert signing.trusted(db, before)  # the ring is now held by this process
    result_keys.rotate(db)
    assert signing.trusted(db, before)
    # A result signed with the new key by a worker, while this process still held the
    # old ring: the ring is read again (the rotation) and it checks.
    new = result_keys.ensure(db)
    result_keys._cache.rings[db] = (0.0, old)  # held since long ago
    assert signing.trusted(db, signing.sign(new, _meta()))


def test_the_celery_backend_signs_what_it_stores_and_reads_forged_results_as_pending(
    db: str,
) -> None:
    from celery import Celery

    from shellflow.engine.transport.result_signing import signed_class

    app = Celery("sftest_signing", broker="memory://", backend="cache+memory://")
    app.shellflow_db = db  # type: ignore[attr-defined]
    backend = signed_class(type(app.backend))(app=app, url="memory://")
    backend.store_result("c1", {"n": 1}, "SUCCESS")
    assert backend.get_task_meta("c1", cache=False)["result"] == {"n": 1}
    key = backend.get_key_for_task("c3")
    backend.set(key, json.dumps(_meta(task_id="c3", result="FORGED")))
    assert backend.get_task_meta("c3", cache=False)["status"] == "PENDING"
    signed = signing.sign(result_keys.ensure(db), _meta(task_id="c3", result="real"))
    backend.set(key, json.dumps(signed))
    assert backend.get_task_meta("c3", cache=False)["result"] == "real"


def test_flow_db_init_makes_the_key_and_rotate_key_replaces_it(db: str, cli: Any) -> None:
    cli.ok("db", "init")  # an initialised database: the key is made all the same
    first = result_keys.read_ring(db)
    assert first is not None
    done = cli.ok("db", "init", "--rotate-key")
    assert "rotated" in done.stderr and "24 hours" in done.stderr
    ring = result_keys.read_ring(db)
    assert ring is not None and ring.previous == first.current


def test_the_rpc_backend_signs_what_it_publishes_and_checks_what_it_reads(db: str) -> None:
    from celery import Celery
    from celery.backends.rpc import RPCBackend

    from shellflow.engine.transport.result_signing import signed_class

    app = Celery("sftest_signing_rpc", broker="memory://", backend="rpc://")
    app.shellflow_db = db  # type: ignore[attr-defined]
    backend = signed_class(RPCBackend)(app=app)
    meta = backend._to_result("c1", "SUCCESS", {"a": 1}, None, None)
    assert signing.trusted(db, meta, "c1")
    assert backend.meta_from_decoded(dict(meta))["status"] == "SUCCESS"
    assert backend.meta_from_decoded({**meta, "result": 2})["status"] == "PENDING"
