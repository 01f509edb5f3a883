"""A worker stores a call's result with one write (shellflow.engine.transport.result_store)."""

from __future__ import annotations

import uuid

from celery import Celery, states

from shellflow.engine.transport.result_store import store_without_reading
from tests.conftest import REDIS_URL, require_service


def _app() -> Celery:
    return Celery("sftest_results", broker="memory://", backend=REDIS_URL)


def test_celery_reads_before_it_writes_and_keeps_a_success() -> None:
    """The behaviour the worker's backend drops: a second store after SUCCESS is ignored."""
    require_service("redis")
    backend = _app().backend
    task_id = f"sftest-{uuid.uuid4()}"
    backend.store_result(task_id, 1, states.SUCCESS)
    backend.store_result(task_id, 2, states.SUCCESS)
    assert backend.get_task_meta(task_id, cache=False)["result"] == 1
    backend.forget(task_id)


def test_the_worker_backend_writes_without_reading() -> None:
    require_service("redis")
    app = _app()
    store_without_reading(app)
    backend = app.backend
    assert type(backend).__name__ == "OneWriteBackend"
    reads: list[str] = []
    original = backend.get

    def counted_get(key: str) -> object:
        reads.append(key)
        return original(key)

    backend.get = counted_get  # type: ignore[method-assign]
    task_id = f"sftest-{uuid.uuid4()}"
    backend.store_result(task_id, {"sum": 3}, states.SUCCESS)
    assert reads == []  # stored with one write
    backend.store_result(task_id, {"sum": 4}, states.SUCCESS)  # a redelivery's store
    assert backend.get_task_meta(task_id, cache=False)["result"] == {"sum": 4}
    backend.forget(task_id)


def test_other_backends_are_left_to_celery() -> None:
    app = Celery("sftest_results_rpc", broker="memory://", backend="rpc://")
    store_without_reading(app)
    assert app.backend_cls is None
