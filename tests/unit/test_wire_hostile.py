"""The one-call path's wire clients against hostile servers: each ends, in bounded memory,
with the client's own error saying what was wrong (exit 6 on the CLI, never an internal
error). Servers are the small fakes of ``tests.fake_servers``; no test measures time, each
only has to end (pytest-timeout ends it otherwise)."""

from __future__ import annotations

import json
import struct
import time
import tracemalloc
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from shellflow.client import oneshot
from shellflow.engine.transport import amqpwire, resultwire
from shellflow.engine.transport.routing import Declare
from tests import fake_servers as fake

pytestmark = pytest.mark.timeout(60)

DECLARE = Declare("ex", "direct", "q", "q", True)
RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.2}
BIG = 0xFFFFFFF0  # a length no client should try to read


@contextmanager
def peak_memory(most: int = 8 << 20) -> Iterator[None]:
    """What runs inside allocates at most ``most`` bytes at once (Python allocations)."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < most, f"{peak} bytes allocated at the peak"


def _publish(port: int, seconds: float = 3.0) -> None:
    amqpwire.publish(
        f"amqp://guest:guest@127.0.0.1:{port}//", [DECLARE], "ex", "q", b"{}",
        {"content_type": "application/json"}, RETRY, deadline=time.monotonic() + seconds,
    )  # fmt: skip


def _broker_error(script: fake.Script, seconds: float = 3.0) -> amqpwire.BrokerError:
    with fake.serving(script) as port, pytest.raises(amqpwire.BrokerError) as caught:
        _publish(port, seconds)
    return caught.value


def test_the_fake_broker_is_a_broker() -> None:
    """The fakes answer as RabbitMQ does: what the hostile tests change is all they change."""
    with fake.serving(fake.broker()) as port:
        _publish(port)


FRAME_AFTER_START = {
    "huge frame": (fake.send(struct.pack(">BHI", 1, 0, BIG)), "over frame_max 131072"),
    "unknown frame type": (fake.send(b"HTTP/1.1 400 Bad Request\r\n\r\n"), "unknown frame type"),
    "bad frame end": (fake.send(fake.frame(1, 0, b"\x00\x0a\x00\x29", b"\x00")), "frame end"),
    "short method": (fake.send(fake.frame(1, 0, b"\x00")), "a method frame of 1 bytes"),
    "short tune": (fake.send(fake.method(0, 10, 30, b"\x00")), "connection.tune of 1 bytes"),
    "tiny frame_max": (fake.send(fake.tune(frame_max=8)), "frame_max 8 is below"),
    "short close": (fake.send(fake.method(0, 10, 50, b"\x01")), "a close of 1 bytes"),
}


@pytest.mark.parametrize("name", list(FRAME_AFTER_START))
def test_a_malformed_broker_reply_is_said_at_once(name: str) -> None:
    step, said = FRAME_AFTER_START[name]
    with peak_memory():
        error = _broker_error(fake.broker({(10, 11): step}))
    assert said in str(error), str(error)
    assert str(error).startswith("malformed reply from the broker")
    assert not error.recoverable  # not asked again


def test_a_frame_over_the_negotiated_frame_max_is_refused_unread() -> None:
    """After tune (frame_max 4096), a 5000-byte frame is refused from its header: the
    server never sends its payload, so a client that waited for it would time out."""
    header = struct.pack(">BHI", 1, 1, 5000)
    answers = {(85, 10): fake.send(header)}

    def tuned(conn, stop):  # type: ignore[no-untyped-def]
        conn.sendall(fake.START)
        for key in fake.amqp_methods(conn):
            if key == (10, 11):
                conn.sendall(fake.tune(4096))
            elif key in answers:
                answers[key](conn, stop)
                return
            elif key in fake.ANSWERS:
                conn.sendall(fake.ANSWERS[key])

    def script(conn, stop):  # type: ignore[no-untyped-def]
        fake._read_exactly(conn, 8)
        tuned(conn, stop)

    error = _broker_error(script)
    assert "a frame of 5000 bytes, over frame_max 4096" in str(error)


def test_a_huge_first_frame_is_refused_unread() -> None:
    with peak_memory():
        error = _broker_error(fake.broker(first=fake.send(struct.pack(">BHI", 1, 0, BIG))))
    assert f"a frame of {BIG} bytes" in str(error)


@pytest.mark.parametrize(
    "script",
    [
        fake.broker(first=fake.forever(fake.HEARTBEAT)),  # before connection.start
        fake.broker({(60, 40): fake.forever(fake.HEARTBEAT)}),  # instead of the confirm
        fake.broker(first=fake.trickle(fake.START)),  # the greeting, one byte at a time
        fake.broker({(10, 11): fake.trickle(fake.tune() * 50)}),
        fake.broker(first=fake.silent),  # never a word
    ],
    ids=["heartbeats", "heartbeats-for-confirm", "trickled-start", "trickled-tune", "silent"],
)
def test_the_deadline_is_overall(script: fake.Script) -> None:
    """Heartbeats, or bytes trickled, keep a socket busy but never move the deadline: the
    publish ends (retries included) when it passes, however the server keeps talking."""
    error = _broker_error(script, seconds=2.0)
    assert "timed out" in str(error), str(error)


# -- RESP ----------------------------------------------------------------------------------


def _redis_error(script: fake.Script, action: Callable[[resultwire.ResultChannel], object] | None
                 = None, seconds: float = 3.0) -> resultwire.RedisError:  # fmt: skip
    """The RedisError of subscribing to a fake (then of ``action`` on the channel)."""
    with fake.serving(script) as port, pytest.raises(resultwire.RedisError) as caught:
        url = f"redis://127.0.0.1:{port}/0"
        channel = resultwire.ResultChannel(url, "c-1", deadline=time.monotonic() + seconds)
        try:
            if action is not None:
                action(channel)
        finally:
            channel.close()
    return caught.value


SUBSCRIBE_ANSWERS = {
    "deep arrays": (b"*1\r\n" * 200_000, "nested deeper than 4"),
    "huge bulk": (b"$99999999999\r\n", "a bulk string of 99999999999, over 67108864"),
    "huge array": (b"*2000000000\r\n", "an array of 2000000000, over 64"),
    "garbage": (b"HTTP/1.1 400 Bad Request\r\n\r\n", "unknown reply type"),
    "not a number": (b"*x\r\n", "is not a number"),
    "line never ends": (b"+" + b"a" * 200_000, "a line longer than 65536 bytes"),
    "bulk not ended": (b"$3\r\nabcde\r\n", "not ended by CRLF"),
    "negative length": (b"*-7\r\n", "an array of -7"),
}


@pytest.mark.parametrize("name", list(SUBSCRIBE_ANSWERS))
def test_a_malformed_redis_reply_is_said_at_once(name: str) -> None:
    data, said = SUBSCRIBE_ANSWERS[name]
    with peak_memory():
        error = _redis_error(fake.redis(answer=fake.send(data)))
    assert "malformed reply from Redis" in str(error) and said in str(error), str(error)


def test_the_fake_redis_is_redis() -> None:
    with fake.serving(fake.redis(fake.message(b'{"status": "SUCCESS", "result": 3}'))) as port:
        channel = resultwire.ResultChannel(f"redis://127.0.0.1:{port}/0", "c-1")
        try:
            assert json.loads(channel.next(10) or b"null") == {"status": "SUCCESS", "result": 3}
        finally:
            channel.close()


@pytest.mark.parametrize(
    "script",
    [
        fake.redis(answer=fake.trickle(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nabc\r\n:1\r\n" * 10)),
        fake.redis(fake.trickle(b"*3\r\n$7\r\nmessage\r\n$3\r\nabc\r\n$5\r\nhello\r\n" * 10)),
        fake.redis(answer=fake.silent),
    ],
    ids=["trickled-subscribe", "trickled-message", "silent"],
)
def test_redis_waits_end_by_the_deadline(script: fake.Script) -> None:
    def wait(channel: resultwire.ResultChannel) -> None:
        while True:  # as oneshot waits: until a result, or the deadline says otherwise
            channel.next(0.5)

    error = _redis_error(script, wait, seconds=2.0)
    assert "timed out" in str(error), str(error)


@pytest.mark.parametrize(
    ("script", "said"),
    [
        (fake.redis(fake.send(b":7\r\n")), "an integer on a subscribed connection"),
        (fake.redis(fake.send(b"*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n")), "pub/sub message not of"),
        (
            fake.redis(fake.send(b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n:1\r\n")),
            "pub/sub message not of",
        ),
    ],
    ids=["integer", "short-message", "integer-data"],
)
def test_a_reply_of_an_unexpected_type_is_said(script: fake.Script, said: str) -> None:
    error = _redis_error(script, lambda channel: channel.next(5))
    assert "malformed reply from Redis" in str(error) and said in str(error), str(error)


def test_a_get_of_an_unexpected_type_is_said() -> None:
    def script(conn, stop):  # type: ignore[no-untyped-def]
        data = conn.recv(65536)
        if b"SUBSCRIBE" in data:
            conn.sendall(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n")
        else:
            conn.sendall(b"*1\r\n:1\r\n")  # GET answered with an array
        fake.hold(stop)

    error = _redis_error(script, lambda channel: channel.stored())
    assert "an array for GET, not a string" in str(error), str(error)


def test_a_flood_of_other_replies_does_not_hold_the_wait() -> None:
    """Well-formed replies that are no result, without end: next() still returns."""
    flood = fake.redis(fake.forever(b"*1\r\n$4\r\npong\r\n" * 10_000, every=0.001))
    with fake.serving(flood) as port:
        channel = resultwire.ResultChannel(f"redis://127.0.0.1:{port}/0", "c-1")
        try:
            assert channel.next(0.5) is None
        finally:
            channel.close()


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        (b"[1, 2, 3]", "a JSON list, not an object"),
        (b'"SUCCESS"', "a JSON str, not an object"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
    ids=["list", "string", "bytes", "deep"],
)
def test_a_result_that_is_no_metadata_is_service_unavailable(payload: bytes, said: str) -> None:
    from shellflow.errors import ServiceUnavailable

    with fake.serving(fake.redis(fake.message(payload))) as port:
        url = f"redis://:secret@127.0.0.1:{port}/0"
        channel = resultwire.ResultChannel(url.replace(":secret@", ""), "c-1")
        try:
            settings = types.SimpleNamespace(backend=url)  # all _wait reads of them
            with pytest.raises(ServiceUnavailable) as caught:
                oneshot._wait(settings, channel, "c-1", None, time.monotonic() + 10)  # type: ignore[arg-type]
        finally:
            channel.close()
    text = str(caught.value)
    assert said in text and "secret" not in text, text
    assert caught.value.exit_code == 6
