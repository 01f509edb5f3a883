"""``flow task run`` against hostile servers on the one-call path (plain ``amqp://`` and
``redis://``, spoken by ``shellflow.engine.transport.amqpwire`` and ``resultwire``): exit 6
and one line on stderr naming the service, its URL masked and what was wrong; never an
internal error. The servers are ``tests.fake_servers``' fakes; the database is real."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tests import fake_servers as fake

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the wire is the same
]


@pytest.fixture
def socket_name(cli: Any, initialised_db: str) -> str:
    cli.ok("add", "queue", "-n", "wq")
    cli.ok("add", "processor", "-n", "wp", "-g", "/repo", "-m", "m")
    cli.ok("add", "socket", "-n", "ws", "-q", "wq", "-pn", "wp", "-t", "f")
    return "ws"


def _run(flow: Any, socket: str, broker: fake.Script, backend: fake.Script, *extra: str) -> Any:
    with fake.serving(broker) as amqp, fake.serving(backend) as redis:
        return flow(
            "--broker", f"amqp://guest:hush@127.0.0.1:{amqp}//",
            "--backend", f"redis://:hush@127.0.0.1:{redis}/0",
            "task", "run", "-s", socket, "--data", "1", *extra,
        )  # fmt: skip


def _one_line(result: Any, *said: str) -> str:
    assert result.code == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr
    assert "hush" not in lines[0], lines[0]  # the password is masked
    for words in said:
        assert words in lines[0], lines[0]
    return str(lines[0])


BROKERS = {
    "huge frame": (
        fake.broker({(10, 11): fake.send(struct.pack(">BHI", 1, 0, 0xFFFFFFF0))}),
        "over frame_max",
    ),
    "short frame": (fake.broker({(10, 11): fake.send(fake.frame(1, 0, b"\x00"))}), "method frame"),
    "heartbeats": (fake.broker(first=fake.forever(fake.HEARTBEAT)), "timed out"),
}


@pytest.mark.parametrize("name", list(BROKERS))
def test_a_hostile_broker_is_exit_6_and_one_line(flow: Any, socket_name: str, name: str) -> None:
    script, said = BROKERS[name]
    result = _run(flow, socket_name, script, fake.redis(), "--timeout", "3")
    _one_line(result, "broker unavailable at amqp://guest:", said)


BACKENDS = {
    "deep arrays": (fake.redis(answer=fake.send(b"*1\r\n" * 100_000)), "nested deeper"),
    "huge bulk": (fake.redis(answer=fake.send(b"$99999999999\r\n")), "over 67108864"),
    "garbage": (fake.redis(answer=fake.send(b"HTTP/1.1 400\r\n")), "unknown reply type"),
    "a JSON list": (fake.redis(fake.message(b"[1, 2]")), "a JSON list, not an object"),
    "trickled": (
        fake.redis(fake.trickle(b"*3\r\n$7\r\nmessage\r\n$1000\r\n" + b"x" * 1000)),
        "timed out",
    ),
}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_hostile_result_backend_is_exit_6_and_one_line(
    flow: Any, socket_name: str, name: str
) -> None:
    script, said = BACKENDS[name]
    result = _run(flow, socket_name, fake.broker(), script, "--timeout", "3")
    _one_line(result, "result backend unavailable at redis://", said)
