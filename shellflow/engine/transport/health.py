"""Whether the services an agent and its workers need answer: for ``flow agent status``.

Workers and agents ride out a lost broker, result backend or live channel server by
reconnecting, which leaves a user looking at a quiet fleet with no word of why. This asks
each server the plainest question it answers (a TCP connect, or a Redis PING on the
embedded broker's unix socket) within :data:`PROBE_TIMEOUT`, so the status can say which
one is down. It imports no client library: ``flow agent status`` stays fast.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from shellflow.engine.transport import embedded_broker
from shellflow.urls import Backend, backend_of, socket_path

PROBE_TIMEOUT = 2.0
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "pyamqp": 5672, "redis": 6379, "rediss": 6379}


def service_states(broker: str, backend: str, pubsub: str) -> dict[str, str]:
    """``up``, or ``down: why``, for each service, by its setting's name."""
    states: dict[str, str] = {}
    for name, url in (("broker", broker), ("backend", backend), ("pubsub", pubsub)):
        if url:
            states[name] = probe(url)
    return states


def probe(url: str) -> str:
    """``up`` if the server of ``url`` answers, else ``down: why`` (unknown kinds: ``up``)."""
    kind = backend_of(url)
    if kind is Backend.REDIS_SOCKET:
        path = socket_path(url)
        if path is not None and embedded_broker.answers(path):
            return "up"
        return f"down: no answer on {path}"
    if kind not in (Backend.REDIS, Backend.AMQP):
        return "up"  # rpc://, memory:// ...: nothing of its own to reach
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError as exc:
        return f"down: {exc}"
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return "up"
    except OSError as exc:
        return f"down: {exc.strerror or exc} ({host}:{port})"
