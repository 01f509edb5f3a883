"""Wait for one call's result in Celery's Redis result backend, over a plain socket.

A cold ``flow task run`` needs two things of Redis: to subscribe to its call's result
channel before the call is sent, and to read the stored result should the published one be
missed. redis-py costs more to import than the whole exchange, so those few RESP commands
(``AUTH``, ``SELECT``, ``SUBSCRIBE``, ``GET``) are spoken here. :func:`handles` says which
URLs this module takes (plain TCP or a unix socket; TLS and URL options are left to
redis-py through Celery).

Two connections: one subscribed (a subscribed connection takes no other command), one for
``GET``, opened only if a result has to be looked up.

The server is not trusted. Each reply must come whole within :data:`REPLY_TIMEOUT` and by
the caller's deadline (``flow task run --timeout``), every socket wait recomputed from
them, so bytes trickled one by one stretch nothing; lengths are checked before anything is
read (a bulk string at most :data:`MAX_BULK_BYTES`, a line :data:`MAX_LINE_BYTES`, an array
:data:`MAX_ARRAY_ITEMS` items and :data:`MAX_DEPTH` levels: the replies read here are one
level deep); and a reply of the wrong shape is a :class:`RedisError` saying what was wrong.
"""

from __future__ import annotations

import math
import re
import select
import socket
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shellflow.urls import Backend, backend_of, socket_path, uses_tls
from shellflow.values import MAX_BYTES

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 30.0  # seconds for one whole reply, once waited for
KEY_PREFIX = "celery-task-meta-"  # Celery's RedisBackend keys and channels
# The largest reply read: a call's stored result (Celery's metadata around the value) is a
# bulk string. A worker stores no result over shellflow.values.MAX_BYTES of compact JSON;
# JSON's escapes can make it up to six times longer (\u0000 for one byte), plus metadata.
MAX_BULK_BYTES = 8 * MAX_BYTES
MAX_LINE_BYTES = 64 * 1024  # a status, error, integer or length line
MAX_ARRAY_ITEMS = 64  # a pub/sub message has 3 (4 for a pattern's)
MAX_DEPTH = 4


class RedisError(Exception):
    """Redis could not be reached, or answered with an error or with a malformed reply."""


def _malformed(what: str) -> RedisError:
    return RedisError(f"malformed reply from Redis: {what}")


def handles(url: str) -> bool:
    parts = urlsplit(url)
    backend = backend_of(url)
    if backend is Backend.REDIS_SOCKET:
        return set(parse_qs(parts.query)) <= {"db"}
    return backend is Backend.REDIS and not uses_tls(url) and not parts.query


def _endpoint(url: str) -> tuple[Any, int, str | None, str | None, int]:
    """Address (host and port, or a socket path), family, user, password and database."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    unix = socket_path(url)
    if unix is not None:
        db = int(parse_qs(parts.query).get("db", ["0"])[0])
        return str(unix), socket.AF_UNIX, user, password, db
    path = parts.path.strip("/")
    return (
        (parts.hostname or "localhost", parts.port or 6379),
        socket.AF_INET,
        user,
        password,
        (int(path) if path else 0),
    )


def _command(*words: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word.encode() if isinstance(word, str) else word
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _kind(reply: Any) -> str:
    return {list: "an array", int: "an integer"}.get(type(reply), "a string")


class _Connection:
    """One connection; ``deadline`` (a :func:`time.monotonic` time, or None) ends every wait."""

    def __init__(self, url: str, deadline: float | None = None) -> None:
        address, family, user, password, db = _endpoint(url)
        self.deadline = deadline
        self.reply_by = math.inf  # the deadline of the reply being read
        try:
            timeout = self._left(CONNECT_TIMEOUT)
            if family == socket.AF_UNIX:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(address)
            else:
                self.sock = socket.create_connection(address, timeout=timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise RedisError(f"Error {exc.errno} connecting to {address}. {exc.strerror}") from exc
        self.buffer = bytearray()
        self.db = db
        self.hello: list[bytes] = []  # commands to pipeline before the first one
        if password is not None:
            self.hello.append(_command("AUTH", *([user] if user else []), password))

    def _left(self, cap: float) -> float:
        """Seconds left (at most ``cap``) before the caller's deadline; none left raises."""
        left = cap if self.deadline is None else min(cap, self.deadline - time.monotonic())
        if left <= 0:
            raise RedisError("timed out waiting for Redis")
        return left

    def send(self, *commands: bytes) -> None:
        """Send commands (pipelined after AUTH, if any); their answers are read in order."""
        try:
            self.sock.settimeout(self._left(CONNECT_TIMEOUT))
            self.sock.sendall(b"".join([*self.hello, *commands]))
        except OSError as exc:
            raise RedisError(f"connection lost: {exc}") from exc
        for _ in self.hello:
            self.reply(CONNECT_TIMEOUT)
        self.hello = []

    def ready(self, timeout: float) -> bool:
        """Whether a reply has (begun to) come within ``timeout`` seconds."""
        if self.buffer:
            return True
        readable, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        return bool(readable)

    def reply(self, within: float = REPLY_TIMEOUT) -> Any:
        """The next reply, whole within ``within`` seconds and by the deadline (else
        RedisError, as for an error reply or a malformed one)."""
        self.reply_by = time.monotonic() + self._left(within)
        return self._value(0)

    def _value(self, depth: int) -> Any:
        line = self._line()
        kind, rest = line[:1], bytes(line[1:])
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(" ".join(rest.decode("utf-8", "replace").split())[:200])
        if kind == b":":
            return self._number(rest, "integer")
        if kind == b"$":
            size = self._length(rest, MAX_BULK_BYTES, "a bulk string")
            if size < 0:
                return None
            data = self._exactly(size + 2)
            if data[-2:] != b"\r\n":
                raise _malformed("a bulk string not ended by CRLF")
            return data[:-2]
        if kind in (b"*", b">"):
            size = self._length(rest, MAX_ARRAY_ITEMS, "an array")
            if size > 0 and depth >= MAX_DEPTH:
                raise _malformed(f"arrays nested deeper than {MAX_DEPTH}")
            return None if size < 0 else [self._value(depth + 1) for _ in range(size)]
        raise _malformed(f"unknown reply type {bytes(line[:20])!r}")

    @staticmethod
    def _number(text: bytes, what: str) -> int:
        if re.fullmatch(rb"-?[0-9]{1,19}", text) is None:
            raise _malformed(f"{what} {text[:20]!r} is not a number")
        return int(text)

    def _length(self, text: bytes, bound: int, what: str) -> int:
        """A length, refused over ``bound`` before anything of it is read."""
        size = self._number(text, f"{what}'s length")
        if size > bound:
            raise _malformed(f"{what} of {size}, over {bound}")
        if size < -1:
            raise _malformed(f"{what} of {size}")
        return size

    def _fill(self, most: int = 65536) -> None:
        left = self.reply_by - time.monotonic()
        if left <= 0:
            raise RedisError("timed out waiting for Redis")
        try:
            self.sock.settimeout(left)
            data = self.sock.recv(most)
        except TimeoutError as exc:
            raise RedisError("timed out waiting for Redis") from exc
        except OSError as exc:
            raise RedisError(f"connection lost: {exc}") from exc
        if not data:
            raise RedisError("Redis closed the connection")
        self.buffer += data

    def _line(self) -> bytearray:
        searched = 0
        while (end := self.buffer.find(b"\r\n", searched)) < 0:
            if len(self.buffer) > MAX_LINE_BYTES:
                raise _malformed(f"a line longer than {MAX_LINE_BYTES} bytes")
            searched = max(len(self.buffer) - 1, 0)
            self._fill()
        line = self.buffer[:end]
        del self.buffer[: end + 2]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill(min(max(size - len(self.buffer), 65536), 1 << 20))
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def close(self) -> None:
        self.sock.close()  # never raises for a socket object


class ResultChannel:
    """Subscribed to one call's result channel; :meth:`next` gives published results and
    :meth:`stored` the one kept under the call's key. ``deadline`` (a
    :func:`time.monotonic` time, or None) ends every wait on Redis."""

    def __init__(self, url: str, call_id: str, deadline: float | None = None) -> None:
        self.url = url
        self.key = KEY_PREFIX + call_id
        self.deadline = deadline
        self.sub = _Connection(url, deadline)
        self.getter: _Connection | None = None
        try:
            self.sub.send(_command("SUBSCRIBE", self.key))
            answer = self.sub.reply(CONNECT_TIMEOUT)
        except RedisError as exc:
            self.close()
            raise RedisError(f"no answer to SUBSCRIBE: {exc}") from exc
        if not (isinstance(answer, list) and answer and answer[0] == b"subscribe"):
            self.close()
            raise RedisError(f"unexpected answer to SUBSCRIBE: {repr(answer)[:80]}")

    def next(self, timeout: float) -> bytes | None:
        """A result published within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:  # other replies (a flood of them, even) are skipped until ``timeout``
            left = deadline - time.monotonic()
            if left <= 0 or not self.sub.ready(left):
                return None
            message = self.sub.reply()
            if not isinstance(message, list):  # a subscribed connection hears arrays only
                raise _malformed(f"{_kind(message)} on a subscribed connection")
            if message[:1] == [b"message"]:
                if len(message) != 3 or not isinstance(message[2], bytes):
                    raise _malformed("a pub/sub message not of [message, channel, string]")
                return message[2]

    def stored(self) -> bytes | None:
        """The result stored under the call's key (None while there is none)."""
        if self.getter is None:
            self.getter = _Connection(self.url, self.deadline)
            if self.getter.db:
                self.getter.hello.append(_command("SELECT", str(self.getter.db)))
        self.getter.send(_command("GET", self.key))
        value = self.getter.reply()
        if value is not None and not isinstance(value, bytes):
            raise _malformed(f"{_kind(value)} for GET, not a string")
        return value

    def close(self) -> None:
        self.sub.close()
        if self.getter is not None:
            self.getter.close()
