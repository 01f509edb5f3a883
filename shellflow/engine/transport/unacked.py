"""Prompt redelivery on a Redis broker when a worker's main process dies without a word.

kombu's Redis transport keeps each delivered, unacknowledged message in its ``unacked``
hash (and its delivery time in ``unacked_index``). It hands the messages back itself when
their consumer shuts down or loses a pool process; but a consumer whose *main* process
vanished (``kill -9``, the OOM killer, a machine crash) says nothing, and kombu restores its
messages only once they are older than the visibility timeout. That timeout must stay longer
than the longest call (a message older than it is given to a second worker even while the
first still runs it), so it is an hour
(``shellflow.engine.transport.celery_app.VISIBILITY_TIMEOUT``).

So shellflow records who holds what. A worker's main process adds the delivery tag of each
message it receives to the set ``shellflow.held.<host>.<pid>-<start time>`` (named in the
set ``shellflow.holders``) before the message reaches a pool process. Whenever a worker
starts (an agent starting, or restarting a worker that died) it first calls
:func:`restore_dead`: for each holder on its own host whose process is gone (by pid and
start time, ``shellflow.engine.pids.ProcessId``, so a pid reused by another program does not
keep a dead worker's messages waiting), every tag of that holder still in
``unacked`` goes back to the front of its queue, flagged redelivered (kombu's own
``restore_by_tag``), and the holder is forgotten. A message is restored at most once: the
restore removes it from ``unacked`` in the same transaction that requeues it.

Acknowledged tags are not removed one by one (that would cost a round trip per call): every
:data:`TRIM_EVERY` receipts the worker drops from its set the tags no longer in ``unacked``.
The window left: a main process killed between kombu taking a message and this record of it
(a few microseconds per message) leaves that message to the visibility timeout. RabbitMQ
needs none of this: it requeues a dead connection's unacknowledged messages at once.
"""

from __future__ import annotations

import logging
import socket as pysocket
from typing import Any

from shellflow.engine.pids import ProcessId
from shellflow.urls import is_redis

HOLDERS = "shellflow.holders"
PREFIX = "shellflow.held."
TRIM_EVERY = 500
log = logging.getLogger(__name__)

# Drop the members of KEYS[1] that are no longer fields of the hash KEYS[2].
_TRIM = """
local gone = 0
for _, tag in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HEXISTS', KEYS[2], tag) == 0 then
    redis.call('SREM', KEYS[1], tag)
    gone = gone + 1
  end
end
return gone
"""


def holder_key(host: str | None = None, process: ProcessId | None = None) -> str:
    """The set of the messages ``process`` (default: this one) holds on ``host``."""
    return f"{PREFIX}{host or pysocket.gethostname()}.{process or ProcessId.current()}"


def holder_of(key: str) -> tuple[str, ProcessId | None]:
    """The host and process a holder key names (an older ``<host>.<pid>`` key included)."""
    host, _, process = key[len(PREFIX) :].rpartition(".")
    return host, ProcessId.parse(process)


class Holdings:
    """The worker main process's record of the messages it holds (see the docstring)."""

    def __init__(self, client: Any, unacked_key: str = "unacked") -> None:
        self.client = client
        self.unacked_key = unacked_key
        self.key = holder_key()
        self._count = 0
        self._trim = client.register_script(_TRIM)

    def received(self, delivery_tag: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        if self._count == 0:
            pipe.sadd(HOLDERS, self.key)
        pipe.sadd(self.key, delivery_tag)
        pipe.execute()
        self._count += 1
        if self._count % TRIM_EVERY == 0:
            self._trim(keys=[self.key, self.unacked_key])

    def forget(self) -> None:
        """At a clean shutdown (kombu restores what is unacked itself)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.key)
        pipe.srem(HOLDERS, self.key)
        pipe.execute()


def restore_dead(app: Any) -> int:
    """Requeue the unacked messages of dead workers on this host; how many were restored."""
    if not is_redis(str(app.conf.broker_url or "")):
        return 0
    host = pysocket.gethostname()
    restored = 0
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        client = channel.client
        qos = channel.qos
        for raw in client.smembers(HOLDERS):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            owner, process = holder_of(key)
            if owner != host or process is None or process.alive():
                continue
            for tag in client.smembers(key):
                tag = tag.decode() if isinstance(tag, bytes) else str(tag)
                if client.hexists(qos.unacked_key, tag):
                    qos.restore_by_tag(tag, client, leftmost=True)
                    restored += 1
            client.delete(key)
            client.srem(HOLDERS, key)
    if restored:
        log.warning("requeued %d message(s) held by workers that died", restored)
    return restored


def requeue_all(url: str) -> int:
    """Requeue every unacknowledged message of a Redis broker that has just started.

    A server that has just started has no consumer yet, so each message its append-only file
    kept in ``unacked`` was held on a connection that died with the old server (``kill -9``,
    a crash): its worker can no longer acknowledge it, and kombu would hand it back only
    after the visibility timeout (an hour). Requeued now, it runs again (at least once; a
    call's records are idempotent, and the redelivery is counted).
    """
    from kombu import Connection

    from shellflow.urls import transport_url

    restored = 0
    with Connection(transport_url(url)) as conn:
        channel = conn.default_channel
        client = channel.client
        qos = channel.qos
        for raw in client.hkeys(qos.unacked_key):
            tag = raw.decode() if isinstance(raw, bytes) else str(raw)
            qos.restore_by_tag(tag, client, leftmost=True)
            restored += 1
    if restored:
        log.warning("requeued %d message(s) held when the broker stopped", restored)
    return restored
