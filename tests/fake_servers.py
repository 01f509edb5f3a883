"""Small threaded TCP servers that speak just enough AMQP 0-9-1 or RESP to be hostile.

The one-call path's wire clients (``shellflow.engine.transport.amqpwire``, ``resultwire``)
must not trust their server. These fakes answer as a broker or Redis would up to the point
a test chooses, then send what it chooses: huge lengths, endless heartbeats, bytes one at a
time, deep arrays, short frames, garbage.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Script = Callable[[socket.socket, threading.Event], None]
Step = Script  # what a fake server does at one point of the conversation


@contextmanager
def serving(script: Script) -> Iterator[int]:
    """A server on 127.0.0.1 running ``script(conn, stop)`` per connection; its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def one(conn: socket.socket) -> None:
        try:
            script(conn, stop)
        except OSError:
            pass  # the client went away: what a hostile server expects
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=one, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()
        for thread in threads:
            thread.join(5)


def hold(stop: threading.Event) -> None:
    """Keep the connection open, sending nothing, until the test ends."""
    stop.wait(120)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """A step that never says a word."""
    hold(stop)


def drip(conn: socket.socket, data: bytes, stop: threading.Event, every: float = 0.05) -> None:
    """Send ``data`` one byte at a time."""
    for i in range(len(data)):
        if stop.wait(every):
            return
        conn.sendall(data[i : i + 1])


# -- AMQP 0-9-1 ----------------------------------------------------------------------------


def frame(kind: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + end


def method(channel: int, class_id: int, method_id: int, args: bytes = b"") -> bytes:
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


def _shortstr(text: str) -> bytes:
    return bytes([len(text)]) + text.encode()


START = method(
    0, 10, 10, b"\x00\x09" + struct.pack(">I", 0) + struct.pack(">I", 5) + b"PLAIN"
    + struct.pack(">I", 5) + b"en_US"
)  # fmt: skip
HEARTBEAT = frame(8, 0, b"")


def tune(frame_max: int = 131072) -> bytes:
    return method(0, 10, 30, struct.pack(">HIH", 2047, frame_max, 0))


# What a broker answers to each method the client sends (publish: the confirm, after the
# content frames have come).
ANSWERS: dict[tuple[int, int], bytes] = {
    (10, 11): tune(),
    (10, 40): method(0, 10, 41, _shortstr("")),
    (20, 10): method(1, 20, 11, struct.pack(">I", 0)),
    (85, 10): method(1, 85, 11),
    (40, 10): method(1, 40, 11),
    (50, 10): method(1, 50, 11, _shortstr("q") + struct.pack(">II", 0, 0)),
    (50, 20): method(1, 50, 21),
    (60, 40): method(1, 60, 80, struct.pack(">QB", 1, 0)),
    (10, 50): method(0, 10, 51),
}


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def amqp_methods(conn: socket.socket) -> Iterator[tuple[int, int]]:
    """The client's methods, as they come (its protocol header read before)."""
    while True:
        kind, _, size = struct.unpack(">BHI", _read_exactly(conn, 7))
        payload = _read_exactly(conn, size + 1)[:-1]
        if kind == 1:
            yield struct.unpack_from(">HH", payload)


def broker(hostile: dict[tuple[int, int], Step] | None = None, first: Step | None = None) -> Script:
    """A broker that answers as RabbitMQ would, except: ``first`` replaces its greeting
    (connection.start), and ``hostile[method]`` its answer to that method."""
    hostile = hostile or {}

    def script(conn: socket.socket, stop: threading.Event) -> None:
        _read_exactly(conn, 8)  # AMQP\x00\x00\x09\x01
        if first is not None:
            first(conn, stop)
            return
        conn.sendall(START)
        for key in amqp_methods(conn):
            if key in hostile:
                hostile[key](conn, stop)
                return
            if key in ANSWERS:
                conn.sendall(ANSWERS[key])
            if key == (10, 50):
                return

    return script


# -- RESP ----------------------------------------------------------------------------------


def redis(subscribed: Step | None = None, *, answer: Step | None = None) -> Script:
    """A Redis that answers SUBSCRIBE as Redis does (or with ``answer``), then runs
    ``subscribed`` (the channel is in ``CHANNEL`` of the step's connection); GET finds no
    stored result."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        data = b""
        while not data.endswith(b"\r\n") or (b"SUBSCRIBE" not in data and b"GET" not in data):
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        oks = data.count(b"AUTH") + data.count(b"SELECT")
        conn.sendall(b"+OK\r\n" * oks)  # AUTH and SELECT come pipelined before
        if b"GET" in data:
            conn.sendall(b"$-1\r\n")
            hold(stop)
            return
        if answer is not None:
            answer(conn, stop)
            return
        channel = data.split(b"\r\n")[-2]
        conn.sendall(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel))
        CHANNELS[conn.fileno()] = channel
        (subscribed or (lambda _conn, stop: hold(stop)))(conn, stop)

    return script


CHANNELS: dict[int, bytes] = {}  # a subscribed connection's channel, by file number


def message(payload: bytes) -> Step:
    """A step that publishes ``payload`` on the subscribed channel, then holds."""

    def step(conn: socket.socket, stop: threading.Event) -> None:
        channel = CHANNELS[conn.fileno()]
        conn.sendall(b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(channel), channel, len(payload), payload,
        ))  # fmt: skip
        hold(stop)

    return step


def send(data: bytes) -> Step:
    """A step that sends ``data`` and then holds the connection open."""

    def step(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)
        hold(stop)

    return step


def forever(data: bytes, every: float = 0.05) -> Step:
    """A step that sends ``data`` again and again (heartbeats), never anything else."""

    def step(conn: socket.socket, stop: threading.Event) -> None:
        while not stop.wait(every):
            conn.sendall(data)

    return step


def trickle(data: bytes) -> Step:
    def step(conn: socket.socket, stop: threading.Event) -> None:
        drip(conn, data, stop)
        hold(stop)

    return step
