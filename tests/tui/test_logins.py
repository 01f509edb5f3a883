"""The dashboard's actions with a real token, on SQLite and PostgreSQL (issue 18, point 5).

Nobody's principal is patched: ``SHELLFLOW_TOKEN`` (from ``flow token create``) names who
looks and acts, through the real ``current_principal``. The personas of
:mod:`tests.personas` get the action's right (solo alone; anna and bert by the role
``team``, revoked for bert), plus the right to see what the action is on (nemo: nothing).
A refused action is logged failed with the one-line refusal and changes nothing; an allowed
one really happens; the refusals reach the audit trail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REDIS_URL, require_service
from tests.personas import (
    ALLOWED,
    BERT,
    NEMO,
    USERS,
    add_personas,
    in_process,
    login,
    refusals,
    tokens,
    trail,
)
from tests.tui.conftest import settle, store_calls, store_network
from tests.tui.test_actions import QUEUE, open_network, processor, wait_for_log

pytestmark = pytest.mark.asyncio


@pytest.fixture
def team_db(cli: Any, initialised_db: str) -> tuple[str, dict[str, str]]:
    """The dashboard's network and calls on both databases (``initialised_db``)."""
    store_network(cli, initialised_db)
    return initialised_db, store_calls(initialised_db)


def act_as(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    if token is None:
        monkeypatch.delenv("SHELLFLOW_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SHELLFLOW_TOKEN", token)


async def test_pausing_a_processor_needs_the_right_of_whoever_is_logged_in(
    team_db: tuple[str, dict[str, str]], make_dashboard: Any, flow: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    url, _ = team_db
    owner = in_process()
    add_personas(owner, "PAUSE_PROCESSOR", viewing=("LS_PROCESSORS",))
    made = tokens(owner)
    for name in USERS:
        act_as(monkeypatch, made[name])
        before = processor(url)
        app = make_dashboard(url)
        assert (app.principal.name, app.principal.source) == (name, "SHELLFLOW_TOKEN")
        async with app.run_test(size=(100, 24)) as pilot:
            await open_network(pilot)
            if name == NEMO:  # sees no processor, so has nothing to pause
                assert app.problem == f"{NEMO} lacks the LS_PROCESSORS right on the network"
                await pilot.press("P")
                await settle(pilot)
                assert app.command_log == [] and type(app.screen).__name__ != "ConfirmDialog"
                assert processor(url) == before
                continue
            await pilot.press("P", "y")
            await wait_for_log(pilot, 1)
            logged = app.command_log[0]
            assert logged.command == "flow proc pause -n proc1"
        if ALLOWED[name]:
            assert not logged.failed, logged.outcome
            assert processor(url)[1] == "paused"
            owner("proc", "resume", "-n", "proc1")
        else:
            assert logged.failed
            assert logged.outcome.endswith(f"{name} lacks the PAUSE_PROCESSOR right on proc1")
            assert processor(url) == before
    act_as(monkeypatch, None)
    assert (BERT, "PAUSE_PROCESSOR", "proc1") in refusals(trail(flow, {}))


async def test_retrying_a_dead_call_needs_run_task_of_whoever_is_logged_in(
    team_db: tuple[str, dict[str, str]], make_dashboard: Any, flow: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    require_service("redis")
    import redis

    from shellflow.model.listing import reader, writer

    url, ids = team_db
    dead = ids["b"]
    with writer(url) as conn:  # as a worker leaves a call redelivered past the cap
        conn.execute("UPDATE call SET state = 'dead' WHERE id = ?", [dead])

    def retries() -> int:
        with reader(url) as conn:
            return len(conn.query("SELECT id FROM call WHERE taskparent = ?", [dead]))

    owner = in_process()
    add_personas(owner, "RUN_TASK", viewing=("READ_CALL",))
    made = tokens(owner)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for name in USERS:
            act_as(monkeypatch, made[name])
            before = retries()
            app = make_dashboard(url, redis=REDIS_URL)
            async with app.run_test(size=(100, 24)) as pilot:
                await settle(pilot)
                app.open_call(dead)
                await settle(pilot)
                if name == NEMO:  # may not even read the call
                    assert app.problem == f"{NEMO} lacks the READ_CALL right on call {dead}"
                    assert retries() == before
                    continue
                await pilot.press("r")
                await pilot.pause()
                assert app.screen.command == f"flow task retry {dead} --async"
                await pilot.press("y")
                await wait_for_log(pilot, 1)
                logged = app.command_log[0]
            if ALLOWED[name]:
                assert not logged.failed, logged.outcome
                assert retries() == before + 1
            else:
                assert logged.failed
                assert logged.outcome.endswith(f"{name} lacks the RUN_TASK right on call {dead}")
                assert retries() == before
    finally:
        client.delete(QUEUE)
        client.close()
    act_as(monkeypatch, None)
    assert (BERT, "RUN_TASK", f"call {dead}") in refusals(trail(flow, {}))
    assert retries() == 2  # solo's and anna's


async def test_the_dashboard_resolves_the_token_against_its_own_database(
    team_db: tuple[str, dict[str, str]], make_dashboard: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The dashboard's settings name its database; the environment may name another (here
    an empty home's): who looks and who acts are resolved against the dashboard's."""
    url, _ = team_db
    owner = in_process()
    add_personas(owner, "PAUSE_PROCESSOR", viewing=("LS_PROCESSORS",))
    made = tokens(owner)
    before = processor(url)
    act_as(monkeypatch, made[BERT])
    monkeypatch.delenv("SHELLFLOW_DB")
    monkeypatch.setenv("SHELLFLOW_HOME", str(tmp_path / "elsewhere"))
    app = make_dashboard(url)
    assert app.principal.name == BERT
    async with app.run_test(size=(100, 24)) as pilot:
        await open_network(pilot)
        await pilot.press("P", "y")
        await wait_for_log(pilot, 1)
        logged = app.command_log[0]
    assert logged.failed
    assert logged.outcome.endswith(f"{BERT} lacks the PAUSE_PROCESSOR right on proc1")
    assert processor(url) == before


async def test_a_session_from_flow_login_acts_in_the_dashboard(
    team_db: tuple[str, dict[str, str]], make_dashboard: Any, flow: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The session ``flow login`` left (no token): who looks on start-up and who acts in the
    action's worker thread, on connections of their own threads."""
    url, _ = team_db
    add_personas(in_process(), "PAUSE_PROCESSOR", viewing=("LS_PROCESSORS",))
    session = login(flow, {}, BERT, tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", session["XDG_CONFIG_HOME"])
    before = processor(url)
    app = make_dashboard(url)
    assert (app.principal.name, app.principal.source) == (BERT, "login")
    async with app.run_test(size=(100, 24)) as pilot:
        await open_network(pilot)
        await pilot.press("P", "y")
        await wait_for_log(pilot, 1)
        logged = app.command_log[0]
    assert logged.failed
    assert logged.outcome.endswith(f"{BERT} lacks the PAUSE_PROCESSOR right on proc1")
    assert processor(url) == before
