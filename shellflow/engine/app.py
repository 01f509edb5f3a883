"""The Celery application shared by clients and workers, configured for durability.

JSON is the only content type accepted anywhere, so a pickled message is rejected before it
can run; late acknowledgement with reject-on-worker-lost means a call whose worker dies goes
back to its queue instead of vanishing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shellflow.config import Settings
from shellflow.engine import embedded

if TYPE_CHECKING:
    from celery import Celery

# Custom message headers carrying provenance (read in the worker by ``request.get``).
FLOW_HEADER = "shellflow_flow"
PARENT_HEADER = "shellflow_parent"
ARGUMENT_HEADER = "shellflow_argument"


def _transport_url(url: str) -> str:
    """kombu and Celery name the unix-socket Redis scheme ``redis+socket``; accept ``unix://``."""
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://") :]
    return url


def make_app(settings: Settings, name: str = "shellflow") -> Celery:
    """A Celery app on the configured broker and backend (starting the embedded one if used)."""
    from celery import Celery

    embedded.ensure_for_urls(settings.broker, settings.backend)
    app = Celery(
        name, broker=_transport_url(settings.broker), backend=_transport_url(settings.backend)
    )
    app.conf.update(_conf(settings))
    return app


def _conf(settings: Settings) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_extended": True,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_default_delivery_mode": "persistent",
        "broker_transport_options": {"confirm_publish": True},
    }
    if settings.broker.startswith(("redis", "unix")):
        # A call is redelivered if its worker has not acknowledged it within this window.
        conf["broker_transport_options"] = {"visibility_timeout": 3600}
    return conf
