"""The dashboard's UI-free core on both databases: keyset pages, sorts, filters, actions."""

from __future__ import annotations

import pytest

from shellflow.tui.data.calls import CallFilter, count_calls, fetch_page
from tests.conftest import REDIS_URL
from tests.tui.conftest import DO_SOMETHING, call_id, store_calls


@pytest.fixture
def stored(initialised_db: str) -> tuple[str, dict[str, str]]:
    return initialised_db, store_calls(initialised_db, extra=46)  # 50 calls


def walk(conn, size: int, **kw) -> list[str]:
    """Every id, page after page, as the screen moves forward."""
    seen: list[str] = []
    page = fetch_page(conn, size=size, **kw)
    while True:
        seen += [r.id for r in page.rows]
        if not page.has_after:
            return seen
        page = fetch_page(conn, size=size, after=page.last, **kw)


@pytest.mark.parametrize("sort", ["started", "socket", "state", "duration", "node"])
def test_keyset_pages_cover_every_call_once_in_order(stored, sort: str) -> None:
    from shellflow.model.listing import reader

    url, _ = stored
    with reader(url) as conn:
        for descending in (True, False):
            one_page = [r.id for r in fetch_page(conn, sort=sort, descending=descending,
                                                  size=100).rows]  # fmt: skip
            assert len(one_page) == 50
            assert walk(conn, 7, sort=sort, descending=descending) == one_page


def test_pages_forward_backward_and_refresh(stored) -> None:
    from shellflow.model.listing import reader

    url, _ = stored
    with reader(url) as conn:
        first = fetch_page(conn, size=10)
        assert [r.id for r in first.rows][:2] == [call_id(50), call_id(49)]
        assert not first.has_before and first.has_after
        second = fetch_page(conn, size=10, after=first.last)
        assert second.rows[0].id == call_id(40) and second.has_before
        back = fetch_page(conn, size=10, before=second.first)
        assert [r.id for r in back.rows] == [r.id for r in first.rows] and not back.has_before
        again = fetch_page(conn, size=10, start=second.first)  # a refresh keeps its first row
        assert [r.id for r in again.rows] == [r.id for r in second.rows]
        assert second.rows[0].duration == pytest.approx(0.2)


def test_filters_and_counts(stored) -> None:
    from shellflow.model.listing import reader

    url, ids = stored
    with reader(url) as conn:
        assert count_calls(conn) == (50, True)
        failed = CallFilter.parse("failed")
        assert failed.state == "failed"
        assert [r.id for r in fetch_page(conn, where=failed).rows] == [ids["b"]]
        by_socket = CallFilter.parse(f"socket:{DO_SOMETHING}")
        rows = fetch_page(conn, where=by_socket).rows
        assert rows and {r.socket for r in rows} == {DO_SOMETHING}
        assert count_calls(conn, by_socket)[0] == len(rows)
        assert [r.id for r in fetch_page(conn, where=CallFilter.parse("VALUEERROR")).rows] == [
            ids["b"]
        ]  # words match the error text, whatever the case
        assert fetch_page(conn, where=CallFilter.parse("50%_!")).rows == []  # LIKE escaped
        assert str(CallFilter.parse("state:running  x  socket:s")) == "socket:s state:running x"


def test_call_states_match_the_model() -> None:
    from shellflow.model.calls import CALL_STATES
    from shellflow.tui.data import calls

    assert calls.CALL_STATES == CALL_STATES


def test_rerun_command_quotes_arguments() -> None:
    from shellflow.tui.data.actions import rerun_command

    assert rerun_command("s", ["a b"], {"n": 2}) == "flow task run -s s --data 'a b' n:=2"
    assert rerun_command("s", [{"x": [1]}], {}) == """flow task run -s s --data '{"x":[1]}'"""
    assert rerun_command("s", [], {}) == "flow task run -s s"
    # A string that --data would read as another JSON value is quoted as JSON.
    assert rerun_command("s", ["1"], {}) == """flow task run -s s --data '"1"'"""
    assert rerun_command("s", [1, 2], {}).endswith("# + more positional arguments")


def test_flow_tui_command_help_and_argv(cli) -> None:
    from shellflow.commands.tui import dashboard_argv

    shown = cli.ok("tui", "--help").stdout
    assert "--read-only" in shown and "--channel" in shown
    argv = dashboard_argv(True, ("proc1", "global"), False)
    assert argv[1:] == ["-P", "-m", "shellflow.tui", "--read-only", "--channel", "proc1",
                        "--channel", "global"]  # fmt: skip


def test_dashboard_child_never_imports_from_the_current_directory(tmp_path) -> None:
    """``flow tui`` run in a folder holding ``textual/`` or a module named like a standard
    one: the child it starts imports neither (they would see the database URL)."""
    import subprocess

    from shellflow.commands.tui import dashboard_argv

    marker = tmp_path / "imported"
    planted = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    (tmp_path / "textual").mkdir()
    (tmp_path / "textual" / "__init__.py").write_text(planted)
    (tmp_path / "rich").mkdir()
    (tmp_path / "rich" / "__init__.py").write_text(planted)
    (tmp_path / "argparse.py").write_text(planted)  # the child's first import
    done = subprocess.run(dashboard_argv(False, (), False), cwd=tmp_path, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60,
                          start_new_session=True)  # fmt: skip
    assert done.returncode == 2, done.stderr  # no terminal: refused, having imported nothing
    assert not marker.exists(), marker.read_text()


def test_dashboard_needs_a_terminal(tmp_path) -> None:
    """Without any terminal (no /dev/tty either), one line and exit 2, no traceback."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "shellflow.tui"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, start_new_session=True)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.startswith("flow: flow tui needs a terminal") and "Traceback" not in done.stderr
    )


def test_channel_patterns() -> None:
    from shellflow.tui.data.live import pattern_of

    assert pattern_of("global") == pattern_of("") == "global"
    assert pattern_of("proc1") == "proc1.*"
    assert pattern_of("proc1.eeb1") == "proc1.eeb1.*"  # a dotted processor name
    assert pattern_of("proc1.eeb1.log") == "proc1.eeb1.log"
    assert pattern_of("p[1]*.task") == "p\\[1\\]\\*.task"  # a stored name, taken literally
    assert pattern_of("p?.*") == "p\\?.*"
    from shellflow.tui.data.live import shown_pattern

    assert shown_pattern("p[1]*.task") == "p[1]*.task" and shown_pattern("p?") == "p?.*"
    assert shown_pattern(" ") == "global"


def test_a_processor_name_holding_glob_characters_hears_its_own_channels_only() -> None:
    """Redis reads ``*?[]`` in a pattern as globs: a name stored before the name rule must
    not subscribe to its neighbours' channels (``a[b]`` would hear ``ab``)."""
    import uuid

    from shellflow.engine.records.events import channel_pattern, redis_client
    from tests.conftest import REDIS_URL, require_service

    require_service("redis")
    prefix = f"glob{uuid.uuid4().hex[:8]}"
    client = redis_client(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.psubscribe(channel_pattern(f"{prefix}[b]*"))
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
    for channel in (f"{prefix}b.task", f"{prefix}bx.log", f"{prefix}[b]*.log"):
        client.publish(channel, channel)
    heard = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        heard.append(message["data"].decode())
    pubsub.close()
    assert heard == [f"{prefix}[b]*.log"]


def test_queue_depths_on_redis_amqp_and_a_stopped_embedded_broker(tmp_path) -> None:
    import uuid

    from tests.conftest import require_service

    require_service("redis")
    require_service("rabbitmq")
    import redis
    from kombu import Connection, Exchange, Producer, Queue

    from shellflow.tui.data.network import queue_depths

    name = f"sf-tui-depth-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    try:
        client.rpush(name, "a", "b")
        assert queue_depths(REDIS_URL, [name]) == {name: 2}
        with Connection(amqp) as connection:
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name, durable=False)
            Producer(connection.channel()).publish({"x": 1}, exchange=queue.exchange,
                                                   routing_key=name, declare=[queue])  # fmt: skip
        assert queue_depths(amqp, [name, name + "-absent"]) == {name: 1}
        stopped = f"redis+socket://{tmp_path / 'broker.sock'}"
        assert queue_depths(stopped, [name]) == {}
    finally:
        client.delete(name)
        client.close()
        with Connection(amqp) as connection:
            channel = connection.channel()
            channel.queue_delete(name)
            channel.exchange_delete(name)


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:1/0", "amqp://guest:secret@127.0.0.1:1//"])
def test_queue_depths_of_an_unreachable_broker_say_why(broker: str) -> None:
    """Not an empty answer that looks like empty queues: the error, its URL masked."""
    from shellflow.errors import ServiceUnavailable
    from shellflow.tui.data.network import queue_depths

    with pytest.raises(ServiceUnavailable) as caught:
        queue_depths(broker, ["q"], timeout=1.0)
    assert caught.value.message.startswith("broker unavailable at ")
    assert "secret" not in caught.value.message
