"""Publish one task message to RabbitMQ over a plain socket, speaking AMQP 0-9-1 directly.

A cold ``flow task run`` sends exactly one message. kombu (with py-amqp under it) costs
more to import than the whole exchange with the broker, so for a plain ``amqp://`` URL the
one publish is spoken here: connect, log in (PLAIN), open a channel in confirm mode,
declare the socket's exchange, queue and binding as kombu's ``declare=[queue]`` does,
publish (the same method, properties and header table encoding as py-amqp's) and wait for
the broker's confirm. The worker receives a message it cannot tell from kombu's.

Anything else (TLS, URL options) is left to kombu: :func:`handles` says which URLs this
module takes. A refused or lost connection is retried as Celery's publish retry policy
says (``shellflow.engine.transport.celery_app.PUBLISH_RETRY``); what is still failing then raises
:class:`BrokerError`.

The server is not trusted: the whole publish, retries included, ends by one deadline
(the caller's, e.g. ``flow task run --timeout``, else :data:`PUBLISH_TIMEOUT`; each attempt
at most :data:`ATTEMPT_TIMEOUT`), every socket wait recomputed from it, so neither
heartbeats nor bytes trickled one by one stretch it. A frame is checked before its payload
is read (known type, length within the negotiated ``frame_max``) and after (the frame-end
byte), and a reply too short or of the wrong shape is a :class:`BrokerError` saying so
(not recoverable: a broker that speaks wrongly is not asked again).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from shellflow.engine.transport.routing import Declare
from shellflow.urls import is_amqp, uses_tls

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_KINDS = (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT)
FRAME_END = b"\xce"
FRAME_MAX = 131072  # the largest frame this client takes (RabbitMQ's default), until tuned
FRAME_MIN = 4096  # the protocol's frame-min-size: a broker may not tune below it
CONNECT_TIMEOUT = 4.0  # seconds, as kombu's default for py-amqp
ATTEMPT_TIMEOUT = 15.0  # seconds for one attempt: connect, handshake, declare, publish, confirm
CLOSE_TIMEOUT = 1.0  # seconds to wait for the broker's close-ok
PUBLISH_TIMEOUT = 60.0  # seconds for the whole publish, retries included, without a deadline


class BrokerError(Exception):
    """The broker could not be reached, or refused the message; ``recoverable`` if a retry
    may help (a connection problem, not a refusal)."""

    def __init__(self, message: str, recoverable: bool = True) -> None:
        super().__init__(message)
        self.recoverable = recoverable


def _malformed(what: str) -> BrokerError:
    return BrokerError(f"malformed reply from the broker: {what}", recoverable=False)


def handles(url: str) -> bool:
    """Whether this module can publish to ``url`` (plain AMQP without options)."""
    parts = urlsplit(url)
    plain = is_amqp(url) and not uses_tls(url)
    return plain and not parts.query and not parts.fragment


def _endpoint(url: str) -> tuple[str, int, str, str, str]:
    """Host, port, user, password and virtual host, as kombu reads an AMQP URL."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return (
        parts.hostname or "localhost", parts.port or 5672, unquote(parts.username or "guest"),
        unquote(parts.password or "guest"), unquote(path) or "/",
    )  # fmt: skip


# -- encoding (as py-amqp's amqp.serialization writes it) ---------------------------------


def _shortstr(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > 255:
        raise ValueError(f"AMQP short string too long: {text[:40]!r}...")
    return struct.pack(">B", len(data)) + data


def _longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _item(value: Any) -> bytes:
    if isinstance(value, (str, bytes)):
        data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        return b"S" + _longstr(data)
    if isinstance(value, bool):
        return struct.pack(">cB", b"t", int(value))
    if isinstance(value, float):
        return struct.pack(">cd", b"d", value)
    if isinstance(value, int):
        if value > 2147483647 or value < -2147483647:
            return struct.pack(">cq", b"L", value)
        return struct.pack(">ci", b"I", value)
    if isinstance(value, Mapping):
        return b"F" + table(value)
    if isinstance(value, (list, tuple)):
        return b"A" + _longstr(b"".join(_item(v) for v in value))
    if value is None:
        return b"V"
    raise ValueError(f"cannot send a {type(value).__name__} in an AMQP header")


def table(values: Mapping[str, Any]) -> bytes:
    """An AMQP field table."""
    return _longstr(b"".join(_shortstr(str(k)) + _item(v) for k, v in values.items()))


def _bits(*flags: bool) -> bytes:
    return struct.pack(">B", sum(1 << i for i, flag in enumerate(flags) if flag))


def method(class_id: int, method_id: int, args: bytes = b"") -> bytes:
    return struct.pack(">HH", class_id, method_id) + args


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + FRAME_END


# Basic class properties, in flag order: (name, encoder).
_PROPERTIES: tuple[tuple[str, Any], ...] = (
    ("content_type", _shortstr), ("content_encoding", _shortstr),
    ("application_headers", table), ("delivery_mode", lambda v: struct.pack(">B", v)),
    ("priority", lambda v: struct.pack(">B", v)), ("correlation_id", _shortstr),
    ("reply_to", _shortstr),
)  # fmt: skip


def properties(values: Mapping[str, Any]) -> bytes:
    """The property flags and list of a content header (only the properties used here)."""
    unknown = set(values) - {name for name, _ in _PROPERTIES}
    if unknown:
        raise ValueError(f"unsupported message properties: {sorted(unknown)}")
    flags, out = 0, b""
    for bit, (name, encode) in zip(range(15, 0, -1), _PROPERTIES, strict=False):
        value = values.get(name)
        if value is not None:
            flags |= 1 << bit
            out += encode(value)
    return struct.pack(">H", flags) + out


def content(channel: int, body: bytes, props: Mapping[str, Any], frame_max: int) -> bytes:
    """The header frame and body frames of one message of the Basic class."""
    header = struct.pack(">HHQ", 60, 0, len(body)) + properties(props)
    out = [frame(FRAME_HEADER, channel, header)]
    chunk = max(frame_max - 8, 1)
    out += [frame(FRAME_BODY, channel, body[i : i + chunk]) for i in range(0, len(body), chunk)]
    return b"".join(out)


# -- the conversation ----------------------------------------------------------------------


class _Connection:
    """One connection with one channel (1) in confirm mode, ended by ``deadline`` (a
    :func:`time.monotonic` time): every wait on the socket gets only what is left of it."""

    def __init__(self, url: str, deadline: float) -> None:
        host, port, user, password, vhost = _endpoint(url)
        self.deadline = deadline
        try:
            self.sock = socket.create_connection((host, port), timeout=self._left(CONNECT_TIMEOUT))
        except TimeoutError as exc:
            raise BrokerError("timed out connecting to the broker") from exc
        except OSError as exc:
            raise BrokerError(f"[Errno {exc.errno}] {exc.strerror or exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.frame_max = FRAME_MAX
        try:
            self._handshake(user, password, vhost)
        except BaseException:
            self.sock.close()
            raise

    def _left(self, cap: float | None = None) -> float:
        """Seconds left before the deadline (at most ``cap``); none left raises."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise BrokerError("timed out waiting for the broker")
        return left if cap is None else min(left, cap)

    def _handshake(self, user: str, password: str, vhost: str) -> None:
        """connection.start, tune and open; channel.open; confirm.select."""
        self._send(b"AMQP\x00\x00\x09\x01")
        self._expect(0, 10, 10)  # connection.start
        capabilities = {
            "publisher_confirms": True,
            "consumer_cancel_notify": True,
            "connection.blocked": True,
            "authentication_failure_close": True,
        }
        client = {"product": "shellflow", "capabilities": capabilities}
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
        self._send(
            frame(
                FRAME_METHOD,
                0,
                method(
                    10,
                    11,
                    table(client) + _shortstr("PLAIN") + _longstr(response) + _shortstr("en_US"),
                ),
            )
        )
        args = self._expect(0, 10, 30)  # connection.tune
        if len(args) < 8:
            raise _malformed(f"connection.tune of {len(args)} bytes")
        channel_max, frame_max, _ = struct.unpack_from(">HIH", args)
        if 0 < frame_max < FRAME_MIN:
            raise _malformed(f"frame_max {frame_max} is below the protocol's {FRAME_MIN}")
        self.frame_max = min(frame_max or self.frame_max, self.frame_max)
        self._send(
            frame(FRAME_METHOD, 0, method(10, 31, struct.pack(">HIH", channel_max or 65535,
                                                               self.frame_max, 0)))
            + frame(FRAME_METHOD, 0, method(10, 40, _shortstr(vhost) + _shortstr("") + b"\x00"))
            + frame(FRAME_METHOD, 1, method(20, 10, _shortstr("")))
            + frame(FRAME_METHOD, 1, method(85, 10, b"\x00"))
        )  # fmt: skip
        self._expect(0, 10, 41)  # connection.open-ok
        self._expect(1, 20, 11)  # channel.open-ok
        self._expect(1, 85, 11)  # confirm.select-ok

    def declare(self, what: Declare) -> None:
        """exchange.declare, queue.declare and queue.bind, pipelined, as kombu sends them."""
        empty = table({})
        out = b""
        if what.exchange:
            out += frame(
                FRAME_METHOD,
                1,
                method(
                    40,
                    10,
                    struct.pack(">H", 0)
                    + _shortstr(what.exchange)
                    + _shortstr(what.exchange_type)
                    + _bits(False, what.durable, False, False, False)
                    + empty,
                ),
            )
        out += frame(
            FRAME_METHOD,
            1,
            method(
                50,
                10,
                struct.pack(">H", 0)
                + _shortstr(what.queue)
                + _bits(False, what.durable, False, False, False)
                + empty,
            ),
        )
        if what.exchange:
            out += frame(FRAME_METHOD, 1, method(50, 20, struct.pack(">H", 0)
                         + _shortstr(what.queue) + _shortstr(what.exchange)
                         + _shortstr(what.routing_key) + b"\x00" + empty))  # fmt: skip
        self._send(out)
        if what.exchange:
            self._expect(1, 40, 11)
        self._expect(1, 50, 11)
        if what.exchange:
            self._expect(1, 50, 21)

    def publish(
        self, exchange: str, routing_key: str, body: bytes, props: Mapping[str, Any]
    ) -> None:
        """basic.publish and its content, then wait for the broker's ack (confirm mode)."""
        publish = method(60, 40, struct.pack(">H", 0) + _shortstr(exchange)
                         + _shortstr(routing_key) + b"\x00")  # fmt: skip
        self._send(frame(FRAME_METHOD, 1, publish) + content(1, body, props, self.frame_max))
        while True:
            _, class_id, method_id, _ = self._method()
            if (class_id, method_id) == (60, 80):  # basic.ack
                return
            if (class_id, method_id) == (60, 120):  # basic.nack
                raise BrokerError("the broker did not accept the message (nack)", False)

    def close(self) -> None:
        """connection.close, waiting a moment (CLOSE_TIMEOUT) for close-ok: the message is
        confirmed already, or the publish failed; either way the caller goes on."""
        self.deadline = min(self.deadline, time.monotonic() + CLOSE_TIMEOUT)
        try:
            self._send(frame(FRAME_METHOD, 0, method(10, 50, struct.pack(">H", 200)
                       + _shortstr("") + struct.pack(">HH", 0, 0))))  # fmt: skip
            self._expect(0, 10, 51)
        except (OSError, BrokerError, struct.error):
            pass
        finally:
            self.sock.close()

    # -- frames ----------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self._left())
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise BrokerError("timed out sending to the broker") from exc
        except OSError as exc:
            raise BrokerError(f"connection lost: {exc}") from exc

    def _read(self, size: int) -> bytes:
        """Exactly ``size`` bytes (bounded by the callers: a frame header's or frame_max)."""
        while len(self.buffer) < size:
            try:
                self.sock.settimeout(self._left())
                data = self.sock.recv(max(65536, size - len(self.buffer)))
            except TimeoutError as exc:
                raise BrokerError("timed out waiting for the broker") from exc
            except OSError as exc:
                raise BrokerError(f"connection lost: {exc}") from exc
            if not data:
                raise BrokerError("the broker closed the connection")
            self.buffer += data
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def _frame(self) -> tuple[int, int, bytes]:
        """The next frame's type, channel and payload, its length checked before it is read
        (a frame may not exceed frame_max, its 7-byte header and end byte included)."""
        kind, channel, size = struct.unpack(">BHI", self._read(7))
        if kind not in FRAME_KINDS:
            raise _malformed(f"unknown frame type {kind}")
        if size > self.frame_max - 8:
            raise _malformed(f"a frame of {size} bytes, over frame_max {self.frame_max}")
        data = self._read(size + 1)
        if data[-1:] != FRAME_END:
            raise _malformed(f"frame end byte {data[-1:].hex() or 'missing'}, not ce")
        return kind, channel, data[:-1]

    def _method(self) -> tuple[int, int, int, bytes]:
        """The next method frame (heartbeats skipped, the deadline running on); a close
        from the broker raises."""
        while True:
            kind, channel, payload = self._frame()
            if kind != FRAME_METHOD:
                continue
            if len(payload) < 4:
                raise _malformed(f"a method frame of {len(payload)} bytes")
            class_id, method_id = struct.unpack_from(">HH", payload)
            args = payload[4:]
            if class_id == 10 and method_id in (60, 61):  # connection.blocked / unblocked
                continue
            if (class_id, method_id) in ((10, 50), (20, 40)):  # connection.close, channel.close
                if len(args) < 3:
                    raise _malformed(f"a close of {len(args)} bytes")
                code, length = struct.unpack_from(">HB", args)
                text = args[3 : 3 + length].decode("utf-8", "replace")
                text = " ".join(text.split())[:200]
                if class_id == 20:
                    self._send(frame(FRAME_METHOD, channel, method(20, 41)))
                else:
                    self._send(frame(FRAME_METHOD, 0, method(10, 51)))
                # 320 (forced), 501-506 (frame/connection errors): a retry may succeed.
                raise BrokerError(f"({code}) {text}", recoverable=code in (320, 501, 504, 505))
            return channel, class_id, method_id, args

    def _expect(self, channel: int, class_id: int, method_id: int) -> bytes:
        got_channel, got_class, got_method, args = self._method()
        if (got_channel, got_class, got_method) != (channel, class_id, method_id):
            raise BrokerError(
                f"unexpected AMQP method {got_class}.{got_method} on channel {got_channel}",
                recoverable=False,
            )
        return args


def publish(
    url: str, declare: Sequence[Declare], exchange: str, routing_key: str, body: bytes,
    props: Mapping[str, Any], retry: Mapping[str, float], deadline: float | None = None,
) -> None:  # fmt: skip
    """Declare, publish and wait for the confirm, retrying connection failures per ``retry``
    (``max_retries``, ``interval_start``, ``interval_step``, ``interval_max``: kombu's),
    all of it by ``deadline`` (a :func:`time.monotonic` time; default: PUBLISH_TIMEOUT on)."""
    if deadline is None:
        deadline = time.monotonic() + PUBLISH_TIMEOUT
    interval = float(retry.get("interval_start", 0))
    for attempt in range(int(retry.get("max_retries", 0)) + 1):
        try:
            conn = _Connection(url, min(deadline, time.monotonic() + ATTEMPT_TIMEOUT))
            try:
                for what in declare:
                    conn.declare(what)
                conn.publish(exchange, routing_key, body, props)
            finally:
                conn.close()
            return
        except struct.error as exc:  # a reply shorter than its own fields say
            raise _malformed(str(exc)) from exc
        except BrokerError as exc:
            last = attempt >= int(retry.get("max_retries", 0))
            if not exc.recoverable or last or time.monotonic() + interval >= deadline:
                raise
        time.sleep(interval)
        interval = min(interval + float(retry.get("interval_step", 1)),
                       float(retry.get("interval_max", 1)))  # fmt: skip
