"""The Python API without a broker: lazy exports, workflow building, objects and decorators.

The object and decorator tests write to a real database (SQLite and PostgreSQL) through the
same store as ``flow add``; calls and workflows run in tests/engine/test_api.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import shellflow
from shellflow.client import settings as api_settings
from shellflow.errors import Conflict, UsageError

HEAVY = ("celery", "sqlalchemy", "kombu", "plumbum", "redis", "textual")
REPO = "https://example.org/pyfi-processors.git"


def test_importing_shellflow_stays_light_and_exports_lazily() -> None:
    code = (
        "import sys, shellflow\n"
        "before = sorted(sys.modules)\n"
        "from shellflow import Socket, Function, Processor, Plug, pipeline, parallel, funnel\n"
        "from shellflow import processor, socket, plug, configure, ProcessorBase\n"
        "print(' '.join(before)); print(' '.join(sorted(sys.modules)))\n"
        "print(Socket is Function, socket.__module__, pipeline.__module__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    before, after, facts = proc.stdout.splitlines()
    assert not [m for m in before.split() if m.split(".")[0] in HEAVY]
    assert "shellflow.client.api" not in before.split()
    # The API modules themselves defer the heavy libraries to the first call.
    assert not [m for m in after.split() if m.split(".")[0] in HEAVY]
    assert facts == "True shellflow.client.decorators shellflow.client.canvas"


def test_all_lists_every_lazy_name() -> None:
    assert set(shellflow.__all__) == {"__version__", *shellflow._LAZY}
    assert set(shellflow.__all__) <= set(dir(shellflow))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        shellflow.nothing  # noqa: B018


def test_workflows_are_built_without_sending() -> None:
    """Nothing is configured here (a fresh home, no database): any send or look-up while
    building would raise."""
    from shellflow import Function, funnel, parallel, pipeline

    do = Function(name="no.such.socket").p
    flow = funnel([do("Eight"), parallel([pipeline([do("One"), do("Two")]), do("Six")])], do("9"))
    assert [p.args for p in flow.partials()] == [["Eight"], ["One"], ["Two"], ["Six"], ["9"]]
    assert repr(do("x", key=1)) == "no.such.socket.p('x', key=1)"
    from shellflow.errors import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="not initialised"):
        flow()  # starting it does look the sockets up


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: shellflow.pipeline([]), UsageError),
        (lambda: shellflow.parallel([]), UsageError),
        (lambda: shellflow.pipeline(["text"]), TypeError),
        (lambda: shellflow.funnel([shellflow.Socket("a").p()], "final"), TypeError),
    ],
)
def test_malformed_workflows_are_refused(build: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()


# -- objects -------------------------------------------------------------------------------


@pytest.fixture
def configured(initialised_db: str) -> Iterator[str]:
    shellflow.configure(db=initialised_db)
    yield initialised_db
    api_settings.reset()


def test_object_api_creates_the_spec_network_once(configured: str) -> None:
    from shellflow import Plug, Processor, Socket

    proc = Processor(name="proc1", gitrepo=REPO, module="pyfi.processors.sample", branch="main",
                     concurrency=6, beat=True, user="spec-user")  # fmt: skip
    proc2 = Processor(
        name="proc2", gitrepo=REPO, module="pyfi.processors.sample", hostname="agent1"
    )
    do_something = Socket(
        name="pyfi.processors.sample.do_something", processor=proc, queue={"name": "pyfi.queue1"},
        task="do_something", interval=5,
    )  # fmt: skip
    do_this = Socket(name="pyfi.processors.sample.do_this", processor=proc2,
                     queue={"name": "pyfi.queue2", "type": "topic"}, task="do_this")  # fmt: skip
    plug = Plug(name="plug1", processor=proc, source=do_something, target=do_this,
                queue={"name": "pyfi.queue3"})  # fmt: skip
    assert [proc.created, proc2.created, do_something.created, do_this.created, plug.created] == [
        True, True, True, True, True,
    ]  # fmt: skip
    assert do_something.socket["queue"] == "pyfi.queue1"
    assert do_something.row["interval"] == 5 and do_this.row["processor"] == "proc2"
    assert plug.row["source"] == do_something.name and plug.row["processor"] == "proc1"
    assert proc.row["concurrency"] == 6
    # Running the script again changes nothing.
    again = [
        Processor(name="proc1", gitrepo=REPO, module="pyfi.processors.sample", concurrency=6),
        Socket(name=do_something.name, processor="proc1", queue="pyfi.queue1", task="do_something"),
        Plug(name="plug1", source=do_something.name, target=do_this.name, queue="pyfi.queue3"),
    ]
    assert [o.created for o in again] == [False, False, False]


def test_object_api_refuses_what_the_store_refuses(configured: str) -> None:
    from shellflow import Plug, Processor, Socket

    Processor(name="proc1", gitrepo=REPO, module="pyfi.processors.sample")
    with pytest.raises(Conflict, match=r"gitrepo=.*asked for 'elsewhere'"):
        Processor(name="proc1", gitrepo="elsewhere", module="pyfi.processors.sample")
    with pytest.raises(UsageError, match="does not exist; to create it give queue, processor"):
        Socket(name="lonely", task="do_something")
    with pytest.raises(UsageError, match="no field 'colour'"):
        Processor(name="proc9", gitrepo=REPO, module="m", colour="red")
    with pytest.raises(UsageError, match="not a Python function name"):
        Socket(name="bad", processor="proc1", queue="q", task="not-a-name")
    Socket(name="a", processor="proc1", queue="q", task="do_something")
    with pytest.raises(UsageError, match="cannot connect a socket to itself"):
        Plug(name="loop", source="a", target="a", queue="q")
    from shellflow.errors import NotFound

    with pytest.raises(NotFound, match="no socket named 'missing'"):
        Plug(name="p", source="a", target="missing", queue="q")
    with pytest.raises(UsageError, match="belongs to its source's processor"):
        Plug(name="p", source="a", target="a2", queue="q", processor="proc2")


def test_decorator_api_builds_the_spec_network(configured: str) -> None:
    """Spec 12.2.1, listing 1 (with a repository of our own and queue ages that keep)."""
    from shellflow import ProcessorBase, Socket, plug, processor, socket
    from shellflow.model.listing import list_objects, reader

    def define() -> tuple[type[ProcessorBase], type[ProcessorBase]]:
        @processor(name="proc2", gitrepo=REPO, module="pyfi.processors.sample", concurrency=1)
        class ProcessorB(ProcessorBase):
            """Description"""

            @socket(name="proc2.do_this", processor="proc2", arguments=True,
                    queue={"name": "sockq2"})  # fmt: skip
            def do_this(message: str) -> dict[str, Any]:
                return {"message": "Do this String: " + str(message)}

        @processor(name="proc1", gitrepo=REPO, module="pyfi.processors.sample", concurrency=7)
        class ProcessorA(ProcessorBase):
            def get_message(self) -> str:
                return "Self message!"

            @plug(name="plug1", target="proc2.do_this",
                  queue={"name": "queue1", "message_ttl": 300000, "durable": True})  # fmt: skip
            @socket(name="proc1.do_something", processor="proc1", beat=False, interval=15,
                    queue={"name": "sockq1"})  # fmt: skip
            def do_something(message: str) -> dict[str, Any]:
                return {"message": "TEXT:" + str(message)}

        return ProcessorB, ProcessorA

    first_b, first_a = define()
    assert isinstance(first_a.do_something, Socket)  # type: ignore[attr-defined]
    assert first_a.do_something.function("x") == {"message": "TEXT:x"}  # type: ignore[attr-defined]
    assert first_a.get_message(first_a()) == "Self message!"  # type: ignore[arg-type]
    assert set(first_a.sockets) == {"proc1.do_something"} and set(first_a.plugs) == {"plug1"}
    assert first_b.processor.name == "proc2"
    define()  # a second run of the script is a no-op
    with reader(configured) as conn:
        sockets = {r["name"]: r for r in list_objects(conn, "socket")}
        plugs = list_objects(conn, "plug")
        arguments = list_objects(conn, "argument")
        queue = next(q for q in list_objects(conn, "queue") if q["name"] == "queue1")
    assert sockets["proc1.do_something"]["interval"] == 15
    assert sockets["proc1.do_something"]["task"] == "do_something"
    assert sockets["proc2.do_this"]["queue"] == "sockq2"
    assert [(p["name"], p["source"], p["target"]) for p in plugs] == [
        ("plug1", "proc1.do_something", "proc2.do_this")
    ]
    assert [(a["name"], a["task"]) for a in arguments] == [
        ("message", "pyfi.processors.sample.do_this")
    ]
    assert queue["message_ttl"] == 300000


def test_plug_decorator_needs_a_socket_below_it() -> None:
    from shellflow import plug

    with pytest.raises(UsageError, match="above a @socket"):

        @plug(name="p", target="t", queue="q")
        def lonely(message: str) -> str:
            return message
