"""Live events: every event is stored first and then published on pub/sub.

Channels are ``<processor>.<channel>`` and ``global`` (which carries everything), with
channel names ``task`` (lifecycle: received, prerun, postrun, failure or dead, retry,
revoked, and shellflow's own redelivered, plug, deadletter), ``log`` (lines the function
printed), ``result`` and ``error``; and ``metrics``, each worker's figures once a second,
never stored nor on ``global`` (``shellflow.engine.records.metrics``). Each event message
is one JSON object with these fields:

=========  ==============================================================
id         the event's id: ``CALL/STEP`` for a lifecycle step (received, prerun,
           postrun, failure, dead), else the ``event`` row's (the ``log`` row's for a line)
channel    task, log, result or error
state      the event's name (received, prerun, postrun, failure, log, ...)
date       when it happened (the stored row's time), ISO 8601 in UTC
room       the processor's name
socket     the socket's name
call       the call's id
flow       the flow run's id
data       the result, the error message or the log line, when there is one
=========  ==============================================================

A ``postrun`` event is published twice, on ``task`` and (with the result) on ``result``; a
``failure`` on ``task`` and (with the message) on ``error``: the same ``id`` on two
channels, so ``(channel, id)`` identifies a message.

**Stored, then published.** The worker publishes an event only once its row is committed
(``shellflow.engine.records.recorder`` hands each committed batch to :class:`Publisher`), so every
message a listener receives can also be read back from the call records: that is what lets
``flow listen --since`` replay stored events and then continue live with no gap (see
``shellflow.commands.listen`` and :func:`replay`). A short call's events are therefore
published together when it ends; a call running longer than the records' ``RUNNING_AFTER``
has its start events stored and published while it runs.

**Cheap to publish.** The publisher's connection turns server replies off (``CLIENT REPLY
OFF``) and writes each committed batch as one pipelined write: publishing costs a worker
one ``send`` per call and never waits for Redis. Publishing never fails a call: a pub/sub
outage only costs live viewers their messages (and ``--since`` still finds them stored).

The same code serves both deployments: in the embedded default the pub/sub URL is the
embedded Redis's unix socket, so no extra server is needed.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from shellflow import forks
from shellflow.model.lifecycle import ENDS_WITH_ERROR
from shellflow.redact import mask_text, mask_url
from shellflow.urls import is_redis, socket_path

GLOBAL = "global"
CHANNELS = ("task", "log", "result", "error", "metrics")  # metrics: records/metrics.py
log = logging.getLogger(__name__)
_GLOB_CHARACTERS = str.maketrans({c: "\\" + c for c in "\\*?[]"})


def channel_pattern(processor: str, channel: str | None = None) -> str:
    """The Redis pattern of one processor's live channels (one, or all when ``channel`` is
    None), or of every processor's (``global``).

    A name stored before the name rule may hold ``*?[]``, which Redis would read as glob
    characters and so subscribe to other processors' channels: they are escaped here."""
    if processor == GLOBAL:
        return GLOBAL
    return f"{processor.translate(_GLOB_CHARACTERS)}.{channel or '*'}"


def redis_client(url: str) -> Any:
    """A redis-py client for ``redis://``, ``rediss://`` or a unix-socket URL."""
    import redis

    path = socket_path(url)
    if path is not None:
        return redis.Redis(unix_socket_path=str(path), socket_timeout=5)
    return redis.Redis.from_url(url, socket_timeout=5)


def carries_live_events(url: str) -> bool:
    """Only Redis carries live channels today."""
    return is_redis(url)


class Stored(NamedTuple):
    """One committed event (or log line) of a call, as the records wrote it."""

    id: str
    call: str
    socket: str
    flow: str | None
    state: str  # the event's name; "log" for a printed line
    date: datetime
    data: Any = None  # the result (postrun), the error message (failure) or the line (log)


def iso(value: datetime) -> str:
    """A stored time as ISO 8601 in UTC (SQLite hands naive UTC times back)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def messages(room: str, event: Stored) -> list[dict[str, Any]]:
    """The messages one stored event makes, one per channel it goes to."""
    base = {
        "id": event.id, "state": event.state, "date": iso(event.date), "room": room,
        "socket": event.socket, "call": event.call, "flow": event.flow,
    }  # fmt: skip
    if event.state == "log":
        return [{"channel": "log", **base, "data": event.data}]
    out = [{"channel": "task", **base}]
    if event.state == "postrun":
        out.append({"channel": "result", **base, "data": event.data})
    elif event.state in ENDS_WITH_ERROR:
        out.append({"channel": "error", **base, "data": event.data})
    return out


def message_key(event: dict[str, Any]) -> tuple[str, str]:
    """What identifies a message across replay and live delivery."""
    return (str(event.get("channel")), str(event.get("id")))


def decoded(payload: bytes | str) -> dict[str, Any] | None:
    """A live message's event, or None for a message that is not one: whoever may publish
    on the pub/sub server may send any bytes (not JSON, not an object, nested past the
    parser), and a listener skips them rather than end (``flow listen``, the dashboard)."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return event if isinstance(event, dict) else None


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=repr)


def dumps(event: Any) -> str:
    """JSON text of a message or its data; data JSON cannot write (past the recursion
    limit: the worker refuses such results, but a message must never fail) is null."""
    try:
        return _ENCODER.encode(event)
    except (ValueError, RecursionError, TypeError):
        return "null"


def _utf8(text: str) -> bytes:
    """A message's bytes: a lone surrogate in its text becomes JSON's own escape for it
    (the same value for a reader), never an error that loses the batch."""
    return text.encode("utf-8", "backslashreplace")


GLOBAL_BYTES = GLOBAL.encode()
_text = json.encoder.encode_basestring  # a JSON string, as the encoder writes one (C)


def encoded(room: str, event: Stored) -> list[tuple[str, bytes]]:
    """``messages(room, event)`` as (channel, JSON bytes), byte for byte what ``dumps``
    makes of them, written by hand: a call's events are several messages, and building
    and encoding their dicts was most of the worker's publishing time."""
    date = event.date
    when = date.isoformat() if date.tzinfo is UTC else iso(date)
    flow = "null" if event.flow is None else _text(event.flow)
    tail = (f',"id":{_text(event.id)},"state":{_text(event.state)},"date":"{when}",'
            f'"room":{_text(room)},"socket":{_text(event.socket)},'
            f'"call":{_text(event.call)},"flow":{flow}')  # fmt: skip
    if event.state == "log":
        return [("log", _utf8(f'{{"channel":"log"{tail},"data":{dumps(event.data)}}}'))]
    out = [("task", _utf8(f'{{"channel":"task"{tail}}}'))]
    if event.state == "postrun":
        out.append(("result", _utf8(f'{{"channel":"result"{tail},"data":{dumps(event.data)}}}')))
    elif event.state in ENDS_WITH_ERROR:
        out.append(("error", _utf8(f'{{"channel":"error"{tail},"data":{dumps(event.data)}}}')))
    return out


def _publish(channel: bytes, payload: bytes) -> bytes:
    """``PUBLISH channel payload`` in Redis's wire format (packed by hand: redis-py's
    general packer costs more than the rest of a publish)."""
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
        len(channel), channel, len(payload), payload,
    )  # fmt: skip


class Publisher:
    """Publishes committed events to ``<room>.<channel>`` and ``global``, fire and forget.

    One connection per process (made again after a fork), with replies turned off, so a
    batch of events is one socket write. Idle when the pub/sub URL is not Redis.
    """

    def __init__(self, url: str, room: str) -> None:
        self.url = url
        self.room = room
        self._enabled = carries_live_events(url)
        self._channels = {name: f"{room}.{name}".encode() for name in CHANNELS}
        self._conn: Any = None
        self._broken = False
        forks.at_fork(self.after_fork)

    def after_fork(self) -> None:
        """A forked process connects on its own: the connection is its parent's, left open."""
        self._conn = None

    def _connection(self) -> Any:
        if self._conn is None:
            conn = redis_client(self.url).connection_pool.make_connection()
            conn.connect()
            conn.send_command("CLIENT", "REPLY", "OFF")  # no reply to this nor to any later
            self._conn = conn
        return self._conn

    def publish(self, events: Iterable[Stored]) -> None:
        if not self._enabled:
            return
        packed = b"".join(
            _publish(channel, payload)
            for event in events
            for name, payload in encoded(self.room, event)
            for channel in (self._channels[name], GLOBAL_BYTES)
        )
        if not packed:
            return
        try:
            conn = self._connection()
            conn.send_packed_command([packed], check_health=False)
            self._broken = False
        except Exception as exc:  # a live viewer missing a message must never fail a call
            if not self._broken:
                where, why = mask_url(self.url), mask_text(str(exc))
                log.warning("live events unavailable at %s: %s", where, why)
            self._broken = True
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.disconnect()
        self._conn = None


def replay_since(url: str, since: datetime, room: str | None) -> list[dict[str, Any]]:
    """The messages of events stored at or after ``since`` (every processor's when
    ``room`` is None), oldest first, as the worker published them: the stored events, the
    lifecycle events the call rows tell (``shellflow.model.lifecycle``) and printed lines."""
    from shellflow.model.dialects import sql_time
    from shellflow.model.lifecycle import ORDER, lifecycle
    from shellflow.model.listing import reader

    since = since.astimezone(UTC)
    with reader(url) as conn:
        cutoff = sql_time(conn.dialect, since)
        room_filter = "" if room is None else " AND p.name = ?"
        params: list[Any] = [cutoff] + ([] if room is None else [room])
        owners = " JOIN socket s ON s.id = c.socket_id JOIN processor p ON p.id = s.processor_id"
        events = conn.query(
            "SELECT e.id, e.name, e.created, c.id, c.name, c.tracking, p.name, c.result,"
            f" c.error FROM event e JOIN call c ON c.id = e.call_id{owners}"
            f" WHERE e.created >= ?{room_filter}",
            params,
        )
        calls = conn.query(
            "SELECT c.id, c.name, c.tracking, p.name, c.state, c.started, c.finished,"
            f" c.result, c.error FROM call c{owners} WHERE c.lastupdated >= ?{room_filter}",
            params,
        )
        logs = conn.query(
            "SELECT l.id, l.created, l.text, c.id, c.name, c.tracking, p.name FROM log l"
            f" JOIN call c ON c.id = l.oid{owners}"
            f" WHERE l.discriminator = 'call' AND l.created >= ?{room_filter}",
            params,
        )
    out: list[tuple[datetime, int, int, dict[str, Any]]] = []
    stored: dict[str, list[str]] = {}  # call -> names of its stored events

    def add(processor: str, event: Stored, kind: int) -> None:
        order = ORDER.get(event.state, len(ORDER))  # one instant: the lifecycle's order
        out.extend((event.date, kind, order, m) for m in messages(processor, event))

    for event_id, name, created, call, socket, flow, processor, result, error in events:
        stored.setdefault(str(call), []).append(str(name))
        data = _data(str(name), result, error)
        add(str(processor), Stored(str(event_id), str(call), str(socket), flow, str(name),
                                   _as_time(created), data), 0)  # fmt: skip
    for call, socket, flow, processor, state, started, finished, result, error in calls:
        told = lifecycle(
            str(call), str(socket), state, _as_time(started) if started else None,
            _as_time(finished) if finished else None, error,
            stored=stored.get(str(call), ()),
        )  # fmt: skip
        for event in told:
            if event.created >= since:
                data = _data(event.name, result, error)
                add(str(processor), Stored(event.id, str(call), str(socket), flow, event.name,
                                           event.created, data), 0)  # fmt: skip
    for log_id, created, text, call, socket, flow, processor in logs:
        stored_line = Stored(str(log_id), str(call), str(socket), flow, "log", _as_time(created),
                             text)  # fmt: skip
        add(str(processor), stored_line, 1)
    out.sort(key=lambda item: (item[0], item[1], item[2]))
    return [m for _, _, _, m in out]


def _data(name: str, result: Any, error: Any) -> Any:
    if name == "postrun" and result is not None:
        return json.loads(result)
    if name in ENDS_WITH_ERROR:
        return error
    return None


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
