"""A call whose message cannot be decoded still ends: failed, recorded, its caller answered.

Celery acknowledges a message whose body it cannot decode and only logs it, so the call
has no record and its caller waits forever. shellflow's clients never send such a message
(``shellflow.values`` refuses the value first), but another client may: bytes that are not
UTF-8, or JSON nested deeper than the parser goes. The worker's consumer here records the
call as failed with the reason, when the message's headers name one of its sockets and a
call id, and stores the failure as the call's result, so the caller gets exit 1.
"""

from __future__ import annotations

import logging
import socket as pysocket
from typing import Any

from shellflow.engine.records.recorder import CallStart, Recorder
from shellflow.engine.transport.celery_app import FLOW_HEADER, PARENT_HEADER
from shellflow.model.routes import SocketRoute
from shellflow.values import LIMITS_DOC, shown_text

log = logging.getLogger(__name__)


class Undecodable(Exception):
    """The call's message could not be decoded; carries the reason as text."""


def consumer_class(recorder: Recorder, routes: list[SocketRoute], worker: str) -> type:
    """Celery's worker consumer, answering the calls whose message cannot be decoded."""
    from celery.worker.consumer import Consumer

    by_name = {route.name: route for route in routes}

    class AnsweringConsumer(Consumer):
        def on_decode_error(self, message: Any, exc: Exception) -> None:
            try:
                _fail(self.app, recorder, by_name, worker, message, exc)
            except Exception as problem:  # the message is still acknowledged and logged
                log.warning("an undecodable call was not recorded: %s: %s",
                            type(problem).__name__, problem)  # fmt: skip
            super().on_decode_error(message, exc)

    return AnsweringConsumer


def _fail(
    app: Any, recorder: Recorder, routes: dict[str, SocketRoute], worker: str, message: Any,
    exc: Exception,
) -> None:  # fmt: skip
    headers = message.headers if isinstance(message.headers, dict) else {}
    call_id, route = headers.get("id"), routes.get(str(headers.get("task")))
    if not isinstance(call_id, str) or len(call_id) > 64 or route is None:
        return
    reason = (f"input refused: the call's message cannot be decoded"
              f" ({shown_text(str(exc), 300)}; see {LIMITS_DOC})")  # fmt: skip
    flow, parent = headers.get(FLOW_HEADER), headers.get(PARENT_HEADER)
    recorder.started(
        CallStart(
            call_id=call_id, socket_id=route.socket_id, task_id=route.task_id, name=route.name,
            args=None,  # unknown: recorded as JSON null (call_writes.refused_rows)
            flow=flow if isinstance(flow, str) else call_id,
            parent=parent if isinstance(parent, str) else None,
            hostname=pysocket.gethostname(), worker=worker,
        )
    )  # fmt: skip
    recorder.failed(call_id, route.name, reason, "", [])
    app.backend.mark_as_failure(call_id, Undecodable(reason))
