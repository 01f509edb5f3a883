"""The network as the Network screen and the status bar show it, read through the light path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shellflow.model.listing import Reader, list_objects
from shellflow.urls import is_amqp, is_redis, socket_path

# A node whose agent has not reported for this long no longer counts as an active host.
ACTIVE_HOST_SECONDS = 90.0


@dataclass(frozen=True)
class Summary:
    """The status bar's counts (the spec's console: active hosts, queues, processors)."""

    hosts: int
    queues: int
    processors: int
    running: int


@dataclass(frozen=True)
class Network:
    processors: list[dict[str, Any]]
    sockets: list[dict[str, Any]]
    plugs: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    agents: list[dict[str, Any]]


def age(moment: str | None, now: datetime) -> float | None:
    """Seconds since an ISO time (a heartbeat), or None when it never happened."""
    if not moment:
        return None
    return max(0.0, (now - datetime.fromisoformat(moment)).total_seconds())


def read_network(conn: Reader) -> Network:
    return Network(
        processors=list_objects(conn, "processor"),
        sockets=list_objects(conn, "socket"),
        plugs=list_objects(conn, "plug"),
        nodes=list_objects(conn, "node"),
        agents=list_objects(conn, "agent"),
    )


def summary(conn: Reader, now: datetime) -> Summary:
    queues = int(conn.query("SELECT count(*) FROM queue")[0][0])
    processors, running = conn.query(
        "SELECT count(*), COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0)"
        " FROM processor"
    )[0]
    rows = [*list_objects(conn, "node"), *list_objects(conn, "agent")]
    hosts = {
        row["hostname"] or row["name"]
        for row in rows
        if (seconds := age(row["heartbeat"], now)) is not None and seconds < ACTIVE_HOST_SECONDS
    }
    return Summary(len(hosts), queues, int(processors), int(running))


def queue_depths(broker: str, queues: list[str], timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting in each queue, when the broker tells cheaply (a queue not declared
    yet is left out; {} for a broker kind it cannot ask, or a stopped embedded broker).
    ServiceUnavailable when the broker cannot be asked.

    Redis (and the embedded broker) keeps a queue as a list named after it; AMQP answers a
    passive declare with the message count.
    """
    if not queues:
        return {}
    try:
        if is_redis(broker):
            from shellflow.engine.records.events import redis_client

            path = socket_path(broker)
            if path is not None and not path.exists():
                return {}  # the embedded broker is not running: nothing is queued there
            client = redis_client(broker)
            try:
                pipe = client.pipeline(transaction=False)
                for name in queues:
                    pipe.llen(name)
                return {name: int(n) for name, n in zip(queues, pipe.execute(), strict=True)}
            finally:
                client.close()
        if is_amqp(broker):
            from kombu import Connection

            depths: dict[str, int] = {}
            with Connection(broker, connect_timeout=timeout) as connection:
                channel = connection.channel()
                for name in queues:
                    try:
                        depths[name] = int(channel.queue_declare(name, passive=True).message_count)
                    except connection.channel_errors:  # not declared yet (404): the channel
                        channel = connection.channel()  # closes, so open another; shown "?"
            return depths
    except Exception as exc:  # the Network screen shows "?" and says why on its status line
        from shellflow.errors import ServiceUnavailable

        raise ServiceUnavailable("broker", broker, str(exc) or type(exc).__name__) from exc
    return {}
