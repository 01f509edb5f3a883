"""Real logins and tokens on the CLI and compose, on SQLite and PostgreSQL (issue 18, point 5).

Nobody's principal is patched: each persona of :mod:`tests.personas` acts through ``flow`` in
a subprocess, with a session from ``flow login --password-stdin`` or with ``SHELLFLOW_TOKEN``
from ``flow token create``. The front's right is ``ADD_QUEUE``: solo holds only it, the role
``team`` grants it to anna and bert and it is revoked for bert alone, nemo holds nothing.
A refusal exits 5 with one line and changes nothing (the exported network is compared);
an allowed change really happens; the audit trail holds the logins and the refusals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.personas import (
    ALLOWED,
    ANNA,
    BERT,
    NEMO,
    ROLE_OTHER_RIGHT,
    SOLO,
    USERS,
    add_personas,
    as_owner,
    assert_refused,
    in_process,
    login,
    logins,
    refusals,
    tokens,
    trail,
    with_token,
)

RIGHT = "ADD_QUEUE"


def network(owner: Any) -> str:
    """The stored network as the owner exports it (what a refusal must leave alone)."""
    return str(owner("compose", "export").stdout)


def stored_queues(url: str) -> set[str]:
    from shellflow.model.listing import names, reader

    with reader(url) as conn:
        return set(names(conn, "queue"))


def test_sessions_from_flow_login_act_with_their_users_rights(
    flow: Any, initialised_db: str, tmp_path: Path
) -> None:
    owner = in_process()
    add_personas(owner, RIGHT)
    sessions = {name: login(flow, {}, name, tmp_path) for name in USERS}

    for name in USERS:
        env = sessions[name]
        before = network(owner)
        added = flow("add", "queue", "-n", f"q_{name}", env=env)
        if ALLOWED[name]:
            assert added.code == 0, added.stderr
            assert f"q_{name}" in stored_queues(initialised_db)
        else:
            assert_refused(added, name, RIGHT, f"q_{name}")
            assert network(owner) == before
        # The role's other right stays with bert: the revocation took one right away.
        listed = flow("ls", "queues", env=env)
        if name in (ANNA, BERT):
            assert listed.code == 0, listed.stderr
            assert "q_anna" in listed.stdout
        else:
            assert_refused(listed, name, ROLE_OTHER_RIGHT, "queues")
    flow.ok("add", "queue", "-n", "q_owner", env=as_owner())  # no login: the owner may
    assert stored_queues(initialised_db) == {"q_solo", "q_anna", "q_owner"}

    rows = trail(flow, {})
    assert logins(rows) >= set(USERS)
    assert refusals(rows) >= {
        (BERT, RIGHT, "q_bert"), (NEMO, RIGHT, "q_nemo"),
        (SOLO, ROLE_OTHER_RIGHT, "queues"), (NEMO, ROLE_OTHER_RIGHT, "queues"),
    }  # fmt: skip
    assert not {r for r in refusals(rows) if r[0] == ANNA}

    # A logout revokes the session: the same folder then holds none (the owner acts).
    flow.ok("logout", env=sessions[BERT])
    me = json.loads(flow.ok("whoami", "--json", env=sessions[BERT]).stdout)
    assert me["owner"] is True


def test_tokens_act_on_the_cli_and_on_compose(
    flow: Any, initialised_db: str, tmp_path: Path
) -> None:
    owner = in_process()
    add_personas(owner, RIGHT)
    made = tokens(owner)

    for name in USERS:
        env = with_token({}, made[name])
        me = json.loads(flow.ok("whoami", "--json", env=env).stdout)
        assert (me["user"], me["source"]) == (name, "SHELLFLOW_TOKEN")
        added = flow("add", "queue", "-n", f"t_{name}", env=env)
        if ALLOWED[name]:
            assert added.code == 0, added.stderr
        else:
            assert_refused(added, name, RIGHT, f"t_{name}")

        # compose up: the whole file is refused (exit 5, nothing stored) or applied.
        file = tmp_path / f"{name}.yaml"
        file.write_text(f"version: 1\nqueues:\n  c_{name}: {{type: direct}}\n"
                        f"  c2_{name}: {{type: fanout}}\n")  # fmt: skip
        before = network(owner)
        up = flow("compose", "up", str(file), env=env)
        if ALLOWED[name]:
            assert up.code == 0, up.stderr
            assert "2 added" in up.stderr
        else:
            assert up.code == 5 and up.stdout == ""
            assert up.stderr in {f"flow: {name} lacks the {RIGHT} right on {q}\n"
                                 for q in (f"c_{name}", f"c2_{name}")}  # fmt: skip
            assert network(owner) == before
    up = flow("compose", "up", str(tmp_path / f"{NEMO}.yaml"), env=as_owner())
    assert up.code == 0, up.stderr  # the owner applies what nemo could not

    allowed = [n for n in USERS if ALLOWED[n]]
    expected = {f"{p}_{n}" for n in allowed for p in ("t", "c", "c2")} | {"c_nemo", "c2_nemo"}
    assert stored_queues(initialised_db) == expected

    rows = trail(flow, {})
    refused = refusals(rows)
    assert {(BERT, RIGHT, "t_bert"), (NEMO, RIGHT, "t_nemo")} <= refused
    assert {who for who, right, obj in refused if obj.startswith("c")} == {BERT, NEMO}
    assert all(r["where"].startswith("cli ") for r in rows if r["action"] == "refused")

    # A revoked token stops at once: the next command is refused and changes nothing.
    owner("token", "revoke", "e2e", "-u", ANNA)
    late = flow("add", "queue", "-n", "late", env=with_token({}, made[ANNA]))
    assert late.code == 5 and "was revoked" in late.stderr
    assert "late" not in stored_queues(initialised_db)
