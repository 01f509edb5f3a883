"""How a shellflow worker stores a call's result: one write, not a read and a write.

Celery's key-value result backends read a task's stored state before every write and skip
the write when it already says SUCCESS, so that a redelivered message cannot overwrite a
result (a lost worker whose task had already finished). That read is a full round trip to
Redis for every call, about a sixth of a worker's time per trivial call here.

A shellflow worker does not need it: a redelivered call whose record already says
``finished`` is not run again and answers with its recorded result
(``shellflow.engine.worker.delivery``). A call's record is spooled before its result is stored and
committed within milliseconds (``shellflow.engine.records.recorder``); a worker that died before
committing it is drained by the next one before that one takes any message. The result a
redelivery stores is therefore the same one, except for a redelivery that overtakes the
commit of a killed pool process's record by those milliseconds: it runs the call again, as
at-least-once delivery allows, and its result and record replace the first. Only workers
use this backend; clients read results through Celery's own.
"""

from __future__ import annotations

from typing import Any


def store_without_reading(app: Any) -> None:
    """Make ``app`` (a worker's) store results with one write when its backend is Redis.

    Idempotent: the backend is always built over the class Celery resolves from the app's
    configuration, never over an earlier one-write backend.
    """
    from celery.app.backends import by_url
    from celery.backends.redis import RedisBackend

    cls, backend_url = by_url(app.conf.result_backend, app.loader)
    if not (isinstance(cls, type) and issubclass(cls, RedisBackend)):
        return  # other backends keep Celery's behaviour

    from shellflow.engine.transport.result_signing import signed_class

    class OneWriteBackend(signed_class(cls)):  # type: ignore[misc]  # signs what it stores
        def _store_result(
            self,
            task_id: Any,
            result: Any,
            state: str,
            traceback: Any = None,
            request: Any = None,
            **kwargs: Any,
        ) -> Any:
            from kombu.utils.encoding import bytes_to_str

            meta = self._get_result_meta(
                result=result, state=state, traceback=traceback, request=request
            )
            meta["task_id"] = bytes_to_str(task_id)
            self._set_with_state(self.get_key_for_task(task_id), self.encode(meta), state)
            return result

    # Celery builds the backend lazily, once per thread, as ``backend_cls(app=, url=)``.
    app.backend_cls = lambda app, url=None: OneWriteBackend(app=app, url=backend_url)
