"""Values round-trip or are refused, never half handled (README, "Values and limits").

The client refuses input no call can carry (exit 2, one line naming the record and the
limit; a stream's records before it run); the worker refuses results and printed output it
cannot carry (the call fails with the reason, exit 1), and whatever a message or a function
holds, every call ends recorded and the worker goes on serving everyone else.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest

from tests.engine.conftest import Deployment
from tests.engine.values_net import ENDED, flow_bytes, hostile_network, states
from tests.waiting import poll


def _refused(done: subprocess.CompletedProcess[bytes], *words: str) -> None:
    err = done.stderr.decode("utf-8", "backslashreplace")
    lines = err.strip().splitlines()
    assert done.returncode == 2, err
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("flow: "), err
    for word in words:
        assert word in lines[-1], err


@pytest.fixture
def hostile(deployment: Deployment) -> dict[str, str]:
    names = hostile_network(deployment)
    deployment.start_worker(names["processor"], concurrency=1)
    return names


def test_input_no_call_can_carry_is_refused(
    deployment: Deployment, hostile: dict[str, str]
) -> None:
    d, echo = deployment, hostile["echo"]
    argv = b"caf\xe9".decode("utf-8", "surrogateescape")  # as Python reads a non-UTF-8 argv
    _refused(flow_bytes(d, "task", "run", "-s", echo, "--data", argv),
             "--data", "not UTF-8 text at byte 4 (0xe9)")  # fmt: skip
    _refused(flow_bytes(d, "task", "run", "-s", echo, stdin=b"caf\xe9\n"), "stdin", "not UTF-8")
    done = flow_bytes(d, "task", "run", "--stream", "-s", echo, stdin=b"ok\ncaf\xe9\nlater\n")
    _refused(done, "record 2: not UTF-8 text at byte 4")
    assert done.stdout == b"ok\n"  # the records before it ran, the ones after did not
    for data, words in [
        ('"\\ud800"', "lone surrogate U+D800"),
        ('"a\\u0000b"', "NUL (U+0000)"),
        ("1e400", "beyond the float range"),
        (str(2**64), "beyond 64 bits"),
        ("[" * 65 + "]" * 65, "deeper than 64 levels"),
    ]:
        _refused(flow_bytes(d, "task", "run", "-s", echo, "--data", data), "--data", words)
    deepest = b"[" * 100_000 + b"]" * 100_000  # past the JSON parser's recursion limit
    _refused(flow_bytes(d, "task", "run", "-s", echo, stdin=deepest), "stdin", "64 levels")
    for line, words in [
        (b"NaN", "NaN"),
        (b'{"a": Infinity}', "float range"),
        (b'"\\udc80"', "surrogate"),
    ]:
        done = flow_bytes(
            d, "task", "run", "--stream", "--json", "-s", echo, stdin=b"1\n" + line + b"\n"
        )
        _refused(done, "record 2", words)
        assert done.stdout == b"1\n"
    ten_mb = b"y" * (10 << 20)
    _refused(flow_bytes(d, "task", "run", "--stream", "-s", echo, stdin=ten_mb + b"\n"),
             "record 1", "8 MiB")  # fmt: skip
    _refused(flow_bytes(d, "task", "run", "-s", echo, stdin=ten_mb), "stdin", "8 MiB")
    done = flow_bytes(d, "task", "run", "-s", echo, "--data", "1", "n:=1e400")
    _refused(done, "argument n", "float range")
    # Text that is not JSON is text, as before: NaN is not a JSON number.
    assert flow_bytes(d, "task", "run", "-s", echo, "--data", "NaN").stdout == b"NaN\n"


def test_python_api_refuses_the_same(deployment: Deployment, hostile: dict[str, str]) -> None:
    import shellflow
    from shellflow.client import settings as api_settings
    from shellflow.errors import UsageError

    shellflow.configure(environ=deployment.env)
    try:
        echo = shellflow.Socket(name=hostile["echo"])
        for value in ("\ud800", "a\0b", float("nan"), float("inf"), 2**70, {1.5: 1}, object()):
            with pytest.raises(UsageError, match="argument 1"):
                echo(value)
        with pytest.raises(UsageError, match="argument key: nested deeper than 64 levels"):
            echo("fine", key=_nested(65))
        assert echo("fine").get(timeout=120) == "fine"
    finally:
        api_settings.reset()


def _settings_and_route(
    d: Deployment, socket: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """The deployment's settings (its environment set here) and the socket's route."""
    from shellflow.config import load_settings
    from shellflow.model.listing import reader
    from shellflow.model.routes import socket_route

    for key, item in d.env.items():
        monkeypatch.setenv(key, item)
    settings = load_settings()
    with reader(settings.db) as conn:
        return settings, socket_route(conn, socket)


def _raw_call(d: Deployment, socket: str, value: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Publish a call as a client that checks nothing would: the worker must defend itself."""
    from shellflow.engine.transport.message import OutgoingCall
    from shellflow.engine.transport.publisher import publish, transport_for

    settings, route = _settings_and_route(d, socket, monkeypatch)
    call_id = str(uuid.uuid4())
    call = OutgoingCall(call_id=call_id, route=route, args=[value], kwargs={}, flow=call_id)
    publish(transport_for(settings), call, shown_url=settings.broker)
    return call_id


def _shown(value: Any) -> bytes:
    """How ``flow task run`` prints a result: a string as it is, else compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                           ensure_ascii=False)  # fmt: skip
    return text.encode("utf-8") + b"\n"


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


def test_hostile_battery_leaves_the_worker_serving(
    deployment: Deployment, hostile: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile input (random bytes, invalid UTF-8, NUL, lone surrogates, a 10 MiB line, deep
    nesting: each through a real stream, refused by the client; sent by a client that checks
    nothing, refused by the worker) and hostile results through one worker process; then the
    same process serves 200 of 200 calls in order, every call of the battery ended recorded,
    and no error shows another call's data."""
    d, n = deployment, hostile
    first_pid = flow_bytes(d, "task", "run", "-s", n["pid"])
    assert first_pid.returncode == 0, first_pid.stderr
    secret = f"secret-{uuid.uuid4().hex}"  # another user's data: it must show up nowhere else
    assert (
        flow_bytes(d, "task", "run", "-s", n["echo"], "--data", secret).stdout
        == secret.encode() + b"\n"
    )
    hostile_input = {
        b"\xff\xfe random \x80 bytes": "not UTF-8", b"caf\xe9": "not UTF-8",
        b'"a\\u0000b"': "NUL", b'"\\ud800"': "lone surrogate", b"[" * 5000: "64 levels",
        b"z" * (10 << 20): "8 MiB", b"\0": "NUL",
    }  # fmt: skip
    # Each through a real stream, between two good records: the one before it runs, the
    # stream stops at it (exit 2 naming record 2 and the limit), the one after never runs.
    for number, (record, words) in enumerate(hostile_input.items()):
        before = f"before-{number}".encode()
        streamed = flow_bytes(d, "task", "run", "--stream", "-s", n["echo"],
                              stdin=before + b"\n" + record + b"\n" + b"after\n")  # fmt: skip
        _refused(streamed, "record 2", words)
        assert streamed.stdout == before + b"\n"
        alone = flow_bytes(d, "task", "run", "-s", n["echo"], stdin=record)
        assert alone.returncode == 2, alone.stderr
    # Values at the very limits are carried exactly, through the same stream and worker.
    edge = [_nested(63), 2**64 - 1, -(2**63), "\x1b]52;c;cHduZWQ=\x07\x1b[2J", "\\u0000",
            "\U0010ffff\ufffe", {"": [None, True, 1.5e308]}]  # fmt: skip
    lines = b"".join(json.dumps(v).encode() + b"\n" for v in edge)
    streamed = flow_bytes(d, "task", "run", "--stream", "--json", "-s", n["echo"], stdin=lines)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == b"".join(_shown(v) for v in edge)
    # What a client that checks nothing sends: the worker refuses it, the call fails alone.
    unchecked = ("\ud800", "a\0b", _nested(200), float("nan"), "w" * (9 << 20))
    raw = [_raw_call(d, n["echo"], value, monkeypatch) for value in unchecked]
    results = {
        "deep": "deeper than 64 levels", "big": "over the 8 MiB limit", "nul_result": "NUL",
        "surrogate_result": "lone surrogate", "print_nul": "printed output refused",
        "raise_nul": "ValueError: bad\\x00news", "not_json": "not a JSON value (object)",
        "huge_int": "beyond 64 bits", "nan": "NaN",
    }  # fmt: skip
    for function, words in results.items():
        done = flow_bytes(d, "task", "run", "-s", n[function])
        err = done.stderr.decode("utf-8", "backslashreplace")
        assert done.returncode == 1, (function, err)
        assert words in err and "Traceback" not in err, (function, err)
        assert secret not in err, (function, err)
    seq = "".join(f"{i}\n" for i in range(1, 201)).encode()
    served = flow_bytes(d, "task", "run", "--stream", "-j", "8", "-s", n["echo"], stdin=seq)
    assert served.returncode == 0, served.stderr
    assert served.stdout == seq  # 200 of 200, in order
    assert flow_bytes(d, "task", "run", "-s", n["pid"]).stdout == first_pid.stdout
    # Every call of the battery ended recorded: nothing running or pending, none lost.
    expected = {n["echo"]: 1 + len(hostile_input) + len(edge) + len(raw) + 200,
                **{n[f]: 1 for f in results}}  # fmt: skip
    for socket, count in expected.items():
        poll(lambda s=socket, c=count: len(states(d, s)) == c and set(states(d, s)) <= set(ENDED),
             60, lambda s=socket: f"{s}: {states(d, s)}")  # fmt: skip
    failed = d.query("SELECT id, error FROM call WHERE name = ? AND state = 'failed'", (n["echo"],))
    assert {row[0] for row in failed} == set(raw)
    assert all("input refused" in row[1] and secret not in row[1] for row in failed), failed
    logs = d.query("SELECT text FROM log WHERE text LIKE ?", ("before%",))
    assert [row[0] for row in logs] == ["before\\x00after"]


@pytest.mark.parametrize("megabytes", [7])
def test_a_result_under_the_limit_is_carried(
    deployment: Deployment, hostile: dict[str, str], megabytes: int
) -> None:
    done = flow_bytes(deployment, "task", "run", "-s", hostile["big"], f"megabytes:={megabytes}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"x" * (megabytes << 20) + b"\n"
    poll(lambda: states(deployment, hostile["big"]) == ["finished"], 60)


def test_records_match_what_was_sent(deployment: Deployment, hostile: dict[str, str]) -> None:
    d = deployment
    values = ["café ☕", "tab\there", "\U0001f600", {"k": [1, 2.5, None, True]}, "\x1b[31m"]
    lines = b"".join(json.dumps(v).encode() + b"\n" for v in values)
    done = flow_bytes(d, "task", "run", "--stream", "--json", "-s", hostile["echo"], stdin=lines)
    assert done.returncode == 0, done.stderr
    shown = [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values]
    assert done.stdout == "".join(f"{text}\n" for text in shown).encode()
    rows = d.wait_rows(
        "SELECT args, result FROM call WHERE name = ?", (hostile["echo"],), len(values)
    )
    assert sorted(json.dumps(json.loads(a)["args"][0]) for a, _ in rows) == sorted(
        json.dumps(v) for v in values
    )
    assert sorted(json.dumps(json.loads(r)) for _, r in rows) == sorted(
        json.dumps(v) for v in values
    )


def _raw_body(d: Deployment, socket: str, body: bytes, monkeypatch: pytest.MonkeyPatch) -> str:
    """Publish a call whose body is ``body`` as it is (JSON no decoder takes, say)."""
    from kombu import Connection

    from shellflow.engine.transport.celery_app import celery_conf
    from shellflow.engine.transport.message import Origin, OutgoingCall, build
    from shellflow.engine.transport.routing import queue_of
    from shellflow.urls import transport_url

    settings, route = _settings_and_route(d, socket, monkeypatch)
    call_id = str(uuid.uuid4())
    call = OutgoingCall(call_id=call_id, route=route, args=[], kwargs={}, flow=call_id)
    url = transport_url(settings.broker)
    message = build(call, url, Origin(reply_to=call_id))
    options = celery_conf(settings)["broker_transport_options"]
    with Connection(url, transport_options=options) as conn:
        conn.Producer().publish(
            body, content_type="application/json", content_encoding="utf-8",
            exchange=message.exchange, routing_key=message.routing_key,
            declare=[queue_of(message.declare)], headers=message.headers, delivery_mode=2,
        )  # fmt: skip
    return call_id


def test_a_message_no_decoder_takes_is_answered(
    deployment: Deployment, hostile: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes that are not UTF-8, JSON nested past the parser: sent by a client that checks
    nothing, the call ends failed and recorded, its caller is answered, the worker goes on."""
    d, echo = deployment, hostile["echo"]
    bodies = [b'[["caf\xe9"],{},{}]', b"[[" + b"[" * 100_000 + b"]" * 100_000 + b"],{},{}]"]
    ids = [_raw_body(d, echo, body, monkeypatch) for body in bodies]
    for call_id in ids:
        done = flow_bytes(d, "task", "result", call_id, "--wait", "--timeout", "120")
        err = done.stderr.decode("utf-8", "backslashreplace")
        assert done.returncode == 1, err
        assert "cannot be decoded" in err and "Traceback" not in err, err
    rows = d.wait_rows("SELECT id, state FROM call WHERE name = ?", (echo,), len(ids))
    assert sorted(rows) == sorted((call_id, "failed") for call_id in ids)
    assert flow_bytes(d, "task", "run", "-s", echo, "--data", "after").stdout == b"after\n"
