"""The Python API asks for the same rights as the CLI, before it writes or sends anything.

On SQLite and PostgreSQL: objects (``Processor``, ``Socket``, ``Plug``, the ``@processor``
decorator) need ``ADD_<KIND>``; reading one (``.row``) needs ``READ_<KIND>``; a call
(``socket(...)``, ``.delay``) and a workflow (``pipeline``, ``parallel``, ``funnel``) need
``RUN_TASK`` on every socket they name, checked before the first call is sent. Who acts is
set by replacing ``shellflow.model.access.current_principal``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import shellflow
from shellflow.client import settings as api_settings
from shellflow.errors import ExitCode, PermissionDenied
from tests.integration.typed_world import unused_port

NETWORK = [
    ("add", "queue", "-n", "q1"),
    ("add", "processor", "-n", "p1", "-m", "mod", "-g", "https://example.org/r.git"),
    ("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "t1"),
]


@pytest.fixture
def api(cli: Any, initialised_db: str) -> Iterator[str]:
    """The network above, added by the owner; the API configured with no broker that
    answers (a call that got past its check would fail, not be sent)."""
    for args in NETWORK:
        cli.ok(*args)
    closed = f"redis://127.0.0.1:{unused_port()}/0"
    shellflow.configure(
        environ={"SHELLFLOW_DB": initialised_db, "SHELLFLOW_BROKER": closed,
                 "SHELLFLOW_BACKEND": closed, "SHELLFLOW_PUBSUB": closed}
    )  # fmt: skip
    yield initialised_db
    api_settings.reset()


def as_bob(monkeypatch: pytest.MonkeyPatch, *rights: str) -> None:
    from shellflow.model import access

    bob = access.Principal("bob", rights=frozenset(rights))
    monkeypatch.setattr(access, "current_principal", lambda *_a, **_k: bob)


def names(url: str, kind: str) -> list[str]:
    """What is stored, read past the rights (the test's own look)."""
    from shellflow.model.listing import names as stored
    from shellflow.model.listing import reader

    with reader(url) as conn:
        return sorted(stored(conn, kind))


def refused(right: str, target: str) -> Any:
    return pytest.raises(PermissionDenied, match=f"^bob lacks the {right} right on {target}$")


def test_a_call_and_a_workflow_need_run_task_before_anything_is_sent(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_bob(monkeypatch, "READ_SOCKET", "LS_SOCKETS")
    s1 = shellflow.Socket(name="s1")
    with refused("RUN_TASK", "s1") as caught:
        s1("x")
    assert caught.value.exit_code == ExitCode.PERMISSION_DENIED
    with refused("RUN_TASK", "s1"):
        s1.delay("x")
    with refused("RUN_TASK", "s1"):
        shellflow.pipeline([s1.p("x"), s1.p()]).start()
    with refused("RUN_TASK", "s1"):
        shellflow.parallel([s1.p("x")]).start()
    assert s1.row["name"] == "s1"  # READ_SOCKET: reading it is allowed


def test_reading_and_creating_objects_need_their_rights(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_bob(monkeypatch)
    with refused("READ_PROCESSOR", "p1"):
        _ = shellflow.Processor("p1").row
    with refused("ADD_PROCESSOR", "p2"):
        shellflow.Processor("p2", gitrepo="https://example.org/r.git", module="mod")
    with refused("ADD_SOCKET", "s2"):
        shellflow.Socket(name="s2", processor="p1", queue="q1", task="t2")
    with refused("ADD_QUEUE", "q2"):
        shellflow.Socket(name="s2", processor="p1", queue={"name": "q2"}, task="t2")

    @shellflow.socket(name="s3", queue="q1")
    def job(x: Any) -> Any:
        return x

    with refused("ADD_PROCESSOR", "p3"):

        @shellflow.processor("p3", gitrepo="https://example.org/r.git", module="mod")
        class P3:
            do = job

    assert (names(api, "processor"), names(api, "socket"), names(api, "queue")) == (
        ["p1"], ["s1"], ["q1"],
    )  # fmt: skip
    as_bob(monkeypatch, "ADD_PROCESSOR", "READ_PROCESSOR")
    assert shellflow.Processor("p2", gitrepo="https://example.org/r.git", module="mod").created
    assert shellflow.Processor("p2").row["module"] == "mod"
