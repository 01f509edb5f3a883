"""The fast path for sending many calls: one result subscription for a whole stream.

It publishes as :func:`shellflow.engine.calls.sender.send` does (the one publisher); it exists
because Celery's own client pays per call (a subscription each) what a stream cannot
afford. One call from a cold process (a single ``flow task run``) has its own path,
:mod:`shellflow.client.oneshot`, which builds no Celery app at all.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from shellflow.config import Settings
from shellflow.engine.calls.result_meta import Outcome, decode
from shellflow.engine.calls.sender import app_for, route_for, send
from shellflow.engine.transport.message import OutgoingCall
from shellflow.engine.transport.publisher import publish
from shellflow.engine.transport.result_signing import expect
from shellflow.engine.transport.transports.celery_producer import CeleryTransport
from shellflow.errors import ServiceUnavailable
from shellflow.model.listing import reader


def socket_concurrency(settings: Settings, socket: str) -> int:
    """How many calls of ``socket`` can run at once: the CPUs of its processor's workers.

    The agents' worker rows say what runs; without any (a worker started by hand) the
    processor's own concurrency is the answer.
    """
    route = route_for(settings, socket)
    with reader(settings.db) as conn:
        rows = conn.query(
            "SELECT p.concurrency, (SELECT sum(w.concurrency) FROM worker w"
            " WHERE w.processor_id = p.id) FROM processor p WHERE p.name = ?",
            [route.processor],
        )
    if not rows:
        return 1
    declared, running = rows[0]
    return max(1, int(running or declared or 1))


class Burst:
    """Many calls of one socket from one process, collected by one subscription.

    Celery's own path subscribes to each call's result channel as it is sent and
    unsubscribes when it is read: two commands and three messages per call on the result
    Redis, and a promise to fulfil. A burst gives its calls ids that share a random prefix
    (still UUID-shaped: ``xxxxxxxx-xxxx-4xxx-yxxx-`` and a 12-digit counter), subscribes once
    to the pattern of their result channels before sending anything, and publishes each call
    as Celery's ``send_task`` does without the per-call subscription. Results are decoded
    straight from the pub/sub messages (``shellflow.engine.calls.result_meta``); :meth:`look`
    reads the stored results of given calls (one MGET) for anything a dropped connection
    may have hidden. Calls go through the one publisher
    (``shellflow.engine.transport.publisher``) on the app's producer pool.

    ``native`` is False when the result backend is not Redis: callers then use :func:`send`.
    """

    def __init__(self, settings: Settings, socket: str) -> None:
        import itertools

        self.settings = settings
        self.socket = socket
        self.app = app_for(settings)
        self.route = route_for(settings, socket)
        self.prefix = str(uuid.uuid4())[:24]
        self._count = itertools.count(1)
        backend = self.app.backend
        self.backend = backend
        self.native = hasattr(backend, "client") and hasattr(backend, "get_key_for_task") and (
            type(backend).__name__ in ("RedisBackend", "SentinelBackend")
        )  # fmt: skip
        self.pubsub: Any = None
        # The app's producer pool, without send_task's per-call result subscription.
        self.transport = CeleryTransport(self.app, subscribe=False)

    def start(self) -> None:
        """Subscribe to the burst's result channels and wait until the server confirms."""
        if not self.native:
            return
        try:
            pubsub = self.backend.client.pubsub()
            pubsub.psubscribe(self.backend.get_key_for_task(self.prefix) + b"*")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=1.0)
                if message and message["type"] == "psubscribe":
                    break
            else:
                raise OSError("no answer to PSUBSCRIBE")
        except Exception as exc:
            raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc
        self.pubsub = pubsub

    def next_id(self) -> str:
        """A fresh id of the burst's calls (a publish tried again keeps its id)."""
        return f"{self.prefix}{next(self._count):012x}"

    def send(
        self, args: list[Any], kwargs: dict[str, Any], *, flow: str | None, parent: str | None,
        call_id: str | None = None,
    ) -> str:  # fmt: skip
        """Publish one call (persistent, confirmed, as :func:`send` does); its id."""
        call_id = call_id or self.next_id()
        if not self.native:
            return send(self.settings, self.socket, args, kwargs, flow=flow, parent=parent).call_id
        # The route again (cached for ROUTE_TTL): a socket deleted or moved under the burst
        # stops it (NotFound) rather than filling a queue no worker reads.
        route = route_for(self.settings, self.socket)
        call = OutgoingCall.make(route, args, kwargs, call_id=call_id, flow=flow, parent=parent)
        publish(self.transport, call, shown_url=self.settings.broker)
        expect(call_id, route.name, args, kwargs)  # its result must be made from these
        return call_id

    def sequence(self, call_id: str) -> int | None:
        """The place of one of this burst's calls in its order of sending (1 for the first);
        None for an id that is not the burst's."""
        if not call_id.startswith(self.prefix):
            return None
        try:
            return int(call_id[len(self.prefix) :], 16)
        except ValueError:
            return None

    def results(self, timeout: float) -> list[Outcome]:
        """The outcomes that arrived, waiting up to ``timeout`` seconds for the first."""
        found: list[Outcome] = []
        wait = timeout
        while True:
            try:
                message = self.pubsub.get_message(timeout=wait)
            except Exception as exc:
                raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc
            if message is None:
                return found
            wait = 0.0
            if message["type"] == "pmessage":
                outcome = self._outcome(message["data"])
                if outcome is not None:
                    found.append(outcome)

    def look(self, call_ids: list[str]) -> list[Outcome]:
        """The stored outcomes of these calls, for those that have ended (one MGET)."""
        if not call_ids:
            return []
        keys = [self.backend.get_key_for_task(c) for c in call_ids]
        try:
            values = self.backend.client.mget(keys)
        except Exception as exc:
            raise ServiceUnavailable("result backend", self.settings.backend, str(exc)) from exc
        return [o for o in (self._outcome(v) for v in values if v) if o is not None]

    def _outcome(self, data: Any) -> Outcome | None:
        """The end a stored or published result tells (None: retry, started)."""
        meta = self.backend.decode_result(data)
        return decode(meta.get("task_id"), meta)

    def close(self) -> None:
        import contextlib

        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                self.pubsub.close()
            self.pubsub = None
