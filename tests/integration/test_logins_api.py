"""The Python API and the agent act with a real login or token, on SQLite and PostgreSQL
(issue 18, point 5).

Nobody's principal is patched: ``SHELLFLOW_TOKEN`` (from ``flow token create``) or a session
(from ``flow login``) names who acts, through the real ``current_principal``. The front's
right is ``ADD_PROCESSOR`` (personas of :mod:`tests.personas`); a socket call needs
``RUN_TASK``, which nobody here holds, and is refused before anything is sent (the broker
configured does not answer: a call that got past its check would fail otherwise).
The principal is resolved against the database the API (or the agent) is configured with,
not the one the environment names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shellflow
from shellflow.client import settings as api_settings
from shellflow.errors import ExitCode, PermissionDenied
from tests.integration.typed_world import unused_port
from tests.personas import (
    ALLOWED,
    BERT,
    NEMO,
    SOLO,
    USERS,
    add_personas,
    in_process,
    login,
    refusals,
    tokens,
    trail,
)

RIGHT = "ADD_PROCESSOR"
REPO = "https://example.org/r.git"


def closed() -> dict[str, str]:
    url = f"redis://127.0.0.1:{unused_port()}/0"
    return {"broker": url, "backend": url, "pubsub": url}


@pytest.fixture
def world(initialised_db: str) -> Iterator[dict[str, str]]:
    owner = in_process()
    for args in (("add", "queue", "-n", "q1"),
                 ("add", "processor", "-n", "p1", "-m", "mod", "-g", REPO),
                 ("add", "socket", "-n", "s1", "-q", "q1", "-pn", "p1", "-t", "t1")):  # fmt: skip
        owner(*args)
    add_personas(owner, RIGHT)
    yield tokens(owner)
    api_settings.reset()


def processors(url: str) -> list[str]:
    from shellflow.model.listing import names, reader

    with reader(url) as conn:
        return sorted(names(conn, "processor"))


def test_the_api_acts_as_the_token_names(
    world: dict[str, str], initialised_db: str, flow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shellflow.model.audit._front", ["api"])  # set-up ran the CLI here
    for name in USERS:
        monkeypatch.setenv("SHELLFLOW_TOKEN", world[name])
        shellflow.configure(db=initialised_db, **closed())
        before = processors(initialised_db)
        if ALLOWED[name]:
            made = shellflow.Processor(f"p_{name}", gitrepo=REPO, module="mod")
            assert made.created
            assert f"p_{name}" in processors(initialised_db)
        else:
            with pytest.raises(PermissionDenied) as caught:
                shellflow.Processor(f"p_{name}", gitrepo=REPO, module="mod")
            assert caught.value.exit_code == ExitCode.PERMISSION_DENIED
            assert caught.value.message == f"{name} lacks the {RIGHT} right on p_{name}"
            assert processors(initialised_db) == before
        with pytest.raises(PermissionDenied, match=f"^{name} lacks the RUN_TASK right on s1$"):
            shellflow.Socket(name="s1")("x")  # refused before the (closed) broker is asked
    monkeypatch.delenv("SHELLFLOW_TOKEN")
    shellflow.configure(db=initialised_db, **closed())
    assert shellflow.Processor("p_owner", gitrepo=REPO, module="mod").created
    assert processors(initialised_db) == ["p1", "p_anna", "p_owner", "p_solo"]

    rows = trail(flow, {})
    assert {(BERT, RIGHT, "p_bert"), (NEMO, RIGHT, "p_nemo"), (SOLO, "RUN_TASK", "s1")} <= (
        refusals(rows)
    )
    assert {r["where"].split()[0] for r in rows if (r["who"], r["name"]) == (BERT, "p_bert")} == {
        "api"
    }


def test_the_api_resolves_who_acts_against_its_configured_database(
    world: dict[str, str], initialised_db: str, flow: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``shellflow.configure(db=URL)`` while the environment names another database: a token
    and a session are those of URL. Resolving them against the environment's database
    refused every token as unknown there, and let a logged-in user without rights act as
    the owner (no session for that other database, whose file this test's uid owns)."""
    from tests import templates

    session = login(flow, {"SHELLFLOW_DB": initialised_db}, NEMO, tmp_path)
    monkeypatch.setenv("SHELLFLOW_DB", templates.copy_sqlite(tmp_path / "elsewhere.db"))

    monkeypatch.setenv("XDG_CONFIG_HOME", session["XDG_CONFIG_HOME"])  # nemo's session
    shellflow.configure(db=initialised_db, **closed())
    with pytest.raises(PermissionDenied, match=f"^{NEMO} lacks the {RIGHT} right on p_nemo$"):
        shellflow.Processor("p_nemo", gitrepo=REPO, module="mod")
    with pytest.raises(PermissionDenied, match=f"^{NEMO} lacks the READ_PROCESSOR right on p1$"):
        _ = shellflow.Processor("p1").row

    monkeypatch.setenv("SHELLFLOW_TOKEN", world[SOLO])  # a token wins over the session
    assert shellflow.Processor("p_solo", gitrepo=REPO, module="mod").created
    assert processors(initialised_db) == ["p1", "p_solo"]


def test_the_agent_resolves_who_it_acts_as_against_its_own_database(
    world: dict[str, str], initialised_db: str, flow: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``flow -d URL agent start``: the agent's token or session is that of URL, whatever
    database the environment names (it acted as that other database's owner before)."""
    from shellflow.config import load_settings
    from shellflow.engine.fleet.agent import Agent
    from tests import templates

    session = login(flow, {"SHELLFLOW_DB": initialised_db}, NEMO, tmp_path)
    monkeypatch.setenv("SHELLFLOW_DB", templates.copy_sqlite(tmp_path / "elsewhere.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", session["XDG_CONFIG_HOME"])
    settings = load_settings({"db": initialised_db})
    agent = Agent(settings, node="n1")
    assert (agent.principal.name, agent.principal.local_owner) == (NEMO, False)
    with pytest.raises(PermissionDenied, match=f"^{NEMO} lacks the START_PROCESSOR right on p1$"):
        agent.authorize("START_PROCESSOR", "p1")
    agent.pool.shutdown()

    monkeypatch.setenv("SHELLFLOW_TOKEN", world[SOLO])
    again = Agent(settings, node="n1")
    assert again.principal.name == SOLO
    again.pool.shutdown()
