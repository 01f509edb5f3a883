"""Property tests of the value path (client encode -> message -> worker -> record -> result
-> stdout) over arbitrary bytes, text and JSON, on both deployments.

Property: what goes in comes out identical on stdout (a string as it is, anything else as
compact JSON), or the client refuses it with exit 2 naming its record, consistently; and
the call records hold exactly the values that were sent. One deployment and one worker per
test, not per example; few examples, each one ``flow`` process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shellflow.values import problem
from tests.conftest import FlowRunner
from tests.engine.conftest import Deployment, deploy
from tests.engine.values_net import args_of, flow_bytes, hostile_network

EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))  # fmt: skip
REFUSED = object()


@pytest.fixture(params=["embedded", "distributed"])
def echo(request: pytest.FixtureRequest, flow: FlowRunner) -> Iterator[tuple[Deployment, str]]:
    with deploy(request.param, flow) as d:
        names = hostile_network(d)
        d.start_worker(names["processor"], concurrency=1)
        yield d, names["echo"]


def _strict(text: str) -> Any:
    """What a shell record means: strict JSON, or else the text itself."""

    def refuse(word: str) -> Any:
        raise ValueError(word)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        return text


def _expected(record: bytes) -> Any:
    """The value a record carries, or REFUSED when the rule refuses it."""
    try:
        value = _strict(record.decode("utf-8"))
    except UnicodeDecodeError:
        return REFUSED
    return REFUSED if problem(value) is not None else value


def _shown(value: Any) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                           ensure_ascii=False)  # fmt: skip
    return text.encode("utf-8") + b"\n"


def _check_stream(d: Deployment, done: Any, values: list[Any]) -> list[Any]:
    """The stream's output and exit against the values; the values that were sent."""
    sent = []
    for number, value in enumerate(values, 1):
        if value is REFUSED:
            err = done.stderr.decode("utf-8", "backslashreplace")
            assert done.returncode == 2, err
            assert err.strip().splitlines()[-1].startswith(f"flow: record {number}: "), err
            break
        sent.append(value)
    else:
        assert done.returncode == 0, done.stderr
    assert done.stdout == b"".join(_shown(v) for v in sent)
    return sent


def _records_match(d: Deployment, socket: str, sent: list[Any]) -> None:
    key = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    want = sorted(key(v) for v in sent)
    d.wait_rows("SELECT id FROM call WHERE name = ?", (socket,), len(sent), timeout=120)
    assert sorted(key(args[0]) for args in args_of(d, socket)) == want
    results = d.query("SELECT result FROM call WHERE name = ?", (socket,))
    assert sorted(key(json.loads(row[0])) for row in results) == want  # echo: the same


lines = st.binary(max_size=24).map(lambda b: b.replace(b"\n", b""))


def test_bytes_through_a_stream(echo: tuple[Deployment, str]) -> None:
    d, socket = echo
    sent: list[Any] = []

    @EXAMPLES
    @given(st.lists(st.one_of(lines, st.text(max_size=12).map(str.encode).map(
        lambda b: b.replace(b"\n", b""))), min_size=1, max_size=4))  # fmt: skip
    def run(records: list[bytes]) -> None:
        done = flow_bytes(d, "task", "run", "--stream", "-s", socket,
                          stdin=b"".join(r + b"\n" for r in records))  # fmt: skip
        sent.extend(_check_stream(d, done, [_expected(r) for r in records]))

    run()
    _records_match(d, socket, sent)


text = st.one_of(
    st.text(max_size=10),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=6),  # lone surrogates
    st.sampled_from(["a\0b", "\ud800", "\udfff tail", "", "\x1b[2J", "é\r\n\t"]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.floats(), text,
    st.integers(min_value=-(2**70), max_value=2**70),
)  # fmt: skip


def _nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


values = st.one_of(
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(text, inner, max_size=3), max_leaves=8),
    st.integers(min_value=62, max_value=66).map(_nested),  # around the depth limit
)  # fmt: skip


def test_json_through_a_stream(echo: tuple[Deployment, str]) -> None:
    d, socket = echo
    sent: list[Any] = []

    @EXAMPLES
    @given(st.lists(values, min_size=1, max_size=3))
    def run(items: list[Any]) -> None:
        records = [json.dumps(v).encode() for v in items]  # ASCII JSON: any text fits
        done = flow_bytes(d, "task", "run", "--stream", "--json", "-s", socket,
                          stdin=b"".join(r + b"\n" for r in records))  # fmt: skip
        expected = [REFUSED if problem(v) is not None else v for v in items]
        sent.extend(_check_stream(d, done, expected))

    run()
    _records_match(d, socket, sent)


def test_bytes_as_data(echo: tuple[Deployment, str]) -> None:
    d, socket = echo
    sent: list[Any] = []

    @EXAMPLES
    @given(st.binary(max_size=24).filter(lambda b: b"\0" not in b))
    def run(data: bytes) -> None:
        done = flow_bytes(d, "task", "run", "-s", socket, "--data", data)  # type: ignore[arg-type]
        value = _expected(data)
        if value is REFUSED:
            assert done.returncode == 2, done.stderr
            assert done.stderr.startswith(b"flow: --data: "), done.stderr
            return
        assert done.returncode == 0, done.stderr
        assert done.stdout == _shown(value)
        sent.append(value)

    run()
    _records_match(d, socket, sent)
