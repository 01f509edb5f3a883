"""Wait for one call's result in Celery's Redis result backend, over a plain socket.

A cold ``flow task run`` needs two things of Redis: to subscribe to its call's result
channel before the call is sent, and to read the stored result should the published one be
missed. redis-py costs more to import than the whole exchange, so those few RESP commands
(``AUTH``, ``SELECT``, ``SUBSCRIBE``, ``GET``) are spoken here. :func:`handles` says which
URLs this module takes (plain TCP or a unix socket; TLS and URL options are left to
redis-py through Celery).

Two connections: one subscribed (a subscribed connection takes no other command), one for
``GET``, opened only if a result has to be looked up.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shellflow.urls import Backend, backend_of, socket_path, uses_tls

CONNECT_TIMEOUT = 5.0
KEY_PREFIX = "celery-task-meta-"  # Celery's RedisBackend keys and channels


class RedisError(Exception):
    """Redis could not be reached, or answered with an error."""


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


class _Connection:
    def __init__(self, url: str) -> None:
        address, family, user, password, db = _endpoint(url)
        try:
            if family == socket.AF_UNIX:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(CONNECT_TIMEOUT)
                self.sock.connect(address)
            else:
                self.sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(CONNECT_TIMEOUT)
        except OSError as exc:
            raise RedisError(f"Error {exc.errno} connecting to {address}. {exc.strerror}") from exc
        self.buffer = b""
        self.db = db
        self.hello: list[bytes] = []  # commands to pipeline before the first one
        if password is not None:
            self.hello.append(_command("AUTH", *([user] if user else []), password))

    def send(self, *commands: bytes) -> None:
        """Send commands (pipelined after AUTH, if any); their answers are read in order."""
        try:
            self.sock.sendall(b"".join([*self.hello, *commands]))
        except OSError as exc:
            raise RedisError(f"connection lost: {exc}") from exc
        for _ in self.hello:
            self.reply()
        self.hello = []

    def ready(self, timeout: float) -> bool:
        """Whether a reply has (begun to) come within ``timeout`` seconds."""
        if self.buffer:
            return True
        readable, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        return bool(readable)

    def reply(self) -> Any:
        """The next reply (RedisError when none comes within CONNECT_TIMEOUT seconds)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exactly(size + 2)[:-2]
        if kind in (b"*", b">"):
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise RedisError(f"unexpected reply from Redis: {line[:40]!r}")

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except TimeoutError as exc:
            raise RedisError("timed out waiting for Redis") from exc
        except OSError as exc:
            raise RedisError(f"connection lost: {exc}") from exc
        if not data:
            raise RedisError("Redis closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def close(self) -> None:
        self.sock.close()  # never raises for a socket object


class ResultChannel:
    """Subscribed to one call's result channel; :meth:`next` gives published results and
    :meth:`stored` the one kept under the call's key."""

    def __init__(self, url: str, call_id: str) -> None:
        self.url = url
        self.key = KEY_PREFIX + call_id
        self.sub = _Connection(url)
        self.getter: _Connection | None = None
        try:
            self.sub.send(_command("SUBSCRIBE", self.key))
            answer = self.sub.reply()
        except RedisError as exc:
            self.close()
            raise RedisError(f"no answer to SUBSCRIBE: {exc}") from exc
        if not (isinstance(answer, list) and answer and answer[0] == b"subscribe"):
            self.close()
            raise RedisError(f"unexpected answer to SUBSCRIBE: {answer!r}")

    def next(self, timeout: float) -> bytes | None:
        """A result published within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if not self.sub.ready(deadline - time.monotonic()):
                return None
            message = self.sub.reply()
            if isinstance(message, list) and len(message) == 3 and message[0] == b"message":
                data = message[2]
                return data if isinstance(data, bytes) else None

    def stored(self) -> bytes | None:
        """The result stored under the call's key (None while there is none)."""
        if self.getter is None:
            self.getter = _Connection(self.url)
            if self.getter.db:
                self.getter.hello.append(_command("SELECT", str(self.getter.db)))
        self.getter.send(_command("GET", self.key))
        value = self.getter.reply()
        return value if isinstance(value, bytes) else None

    def close(self) -> None:
        self.sub.close()
        if self.getter is not None:
            self.getter.close()
