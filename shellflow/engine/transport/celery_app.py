"""The Celery application shared by clients and workers, configured for durability.

JSON is the only content type accepted anywhere, so a pickled message is rejected before it
can run; late acknowledgement with reject-on-worker-lost means a call whose worker dies goes
back to its queue instead of vanishing (``shellflow.engine.worker.delivery`` caps how often).

On RabbitMQ every socket queue and its exchange are durable
(``shellflow.engine.transport.routing``), every message is persistent, and every publish waits for
the broker's confirm (``confirm_publish``, which kombu hands to py-amqp's connection); a publish
that meets a broker restart is retried for about ten seconds before the caller is told the broker is
unavailable, so a restart is bridged rather than reported. A worker's consuming connection
heartbeats every :data:`BROKER_HEARTBEAT` seconds (Celery's default is 120, which a RabbitMQ
server negotiates down to its own 60): a worker frozen or cut off holds its unacknowledged
call until RabbitMQ gives its connection up, and with 10 s that comes about 28 s after the
freeze instead of about 175 s (measured; docs/engine.md, Nodes). Only the worker's consumer
sends heartbeats, from its event loop, which a running call (in a pool process) never
blocks; clients' connections send none.

On Redis (the embedded default's broker) a message taken by a worker waits, unacknowledged,
in the transport's ``unacked`` set. A lost pool process or a warm shutdown hands it back at
once; a worker whose *main* process vanished without a word (``kill -9``, a machine crash)
has its messages handed back only after :data:`VISIBILITY_TIMEOUT` (an hour), which is also
the longest a call may run before a second worker would be given it. The embedded server
keeps queued messages in its append-only file (``shellflow.engine.transport.embedded_broker``).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from shellflow.config import Settings
from shellflow.engine.transport import embedded_broker as embedded
from shellflow.urls import is_redis, transport_url

if TYPE_CHECKING:
    from celery import Celery

# Custom message headers carrying provenance (read in the worker by ``request.get``).
FLOW_HEADER = "shellflow_flow"
PARENT_HEADER = "shellflow_parent"
ARGUMENT_HEADER = "shellflow_argument"
SOURCES_HEADER = "shellflow_sources"  # every call whose result the call receives (a list)

VISIBILITY_TIMEOUT = 3600  # seconds (Redis transports only)
# About 10 s of retries before a publish fails with "broker unavailable".
BROKER_HEARTBEAT = 10  # seconds (RabbitMQ only; see the module's docstring)
PUBLISH_RETRY = {"max_retries": 8, "interval_start": 0, "interval_step": 0.5, "interval_max": 2}


def make_app(settings: Settings, name: str = "shellflow") -> Celery:
    """A Celery app on the configured broker and backend (starting the embedded one if used)."""
    embedded.ensure_for_urls(settings.broker, settings.backend)
    app = _signing_app()(
        name, broker=transport_url(settings.broker), backend=transport_url(settings.backend)
    )
    app.shellflow_db = settings.db  # whose key signs and checks results (result_signing)
    app.conf.update(celery_conf(settings))
    return app


@cache
def _signing_app() -> type[Celery]:
    """Celery, with result backends that sign what they store and check what they read
    (``shellflow.engine.transport.result_signing``), whichever backend the URL names."""
    from celery import Celery
    from celery.app import backends

    from shellflow.engine.transport.result_signing import signed_class

    class SigningCelery(Celery):
        shellflow_db: str | None = None

        def _get_backend(self) -> Any:
            backend, url = backends.by_url(
                self.backend_cls or self.conf.result_backend, self.loader
            )
            if not isinstance(backend, type):  # a factory (result_store's), signing already
                return backend(app=self, url=url)
            return signed_class(backend)(app=self, url=url)

    return SigningCelery


def celery_conf(settings: Settings) -> dict[str, Any]:
    """Celery settings for durability (the benchmark gives raw Celery the same ones)."""
    transport: dict[str, Any] = {"confirm_publish": True}  # py-amqp: wait for the broker's ack
    if is_redis(settings.broker):
        transport["visibility_timeout"] = VISIBILITY_TIMEOUT  # see the module's docstring
    conf: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": False,  # the call record says "running"; saves a write per call
        "result_extended": True,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "broker_heartbeat": BROKER_HEARTBEAT,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_default_delivery_mode": "persistent",
        "broker_transport_options": transport,
        # A short broker outage (a restart) is bridged by retrying the publish, not reported.
        "task_publish_retry": True,
        "task_publish_retry_policy": PUBLISH_RETRY,
    }
    return conf
