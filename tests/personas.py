"""Real users for end-to-end rights tests (issue 18, point 5): no principal is patched.

Four personas beside the owner (who acts without a login):

- ``solo`` holds one right, the front's ``right`` (plus ``viewing`` rights where a front
  needs some to reach its action at all, as the dashboard does);
- ``anna`` and ``bert`` are members of the role ``team``, which grants ``right`` and
  ``LS_QUEUES``; ``right`` is then revoked for ``bert`` alone (``flow delete privilege -u
  bert -n RIGHT``), so bert is refused while anna, another member, still may;
- ``nemo`` holds no right at all.

They act through real logins: a session from ``flow login --password-stdin`` (each persona
with its own XDG config folder, where ``sessions.json`` lives) or a token from ``flow token
create`` in ``SHELLFLOW_TOKEN``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.conftest import FlowRunner, Result

PASSWORD = "correct horse battery staple"
SOLO, ANNA, BERT, NEMO = "solo", "anna", "bert", "nemo"
USERS = (SOLO, ANNA, BERT, NEMO)
ALLOWED = {SOLO: True, ANNA: True, BERT: False, NEMO: False}  # with the front's right
ROLE = "team"
ROLE_OTHER_RIGHT = "LS_QUEUES"

Owner = Callable[..., Result]  # runs ``flow ARGS`` as the owner, with ``input=``


def in_process(env: Mapping[str, str] | None = None) -> Owner:
    """``flow`` run in this process as the owner (set-up a test does not check), with the
    deployment's ``env`` when one is given."""

    def run(*args: str, input: str | None = None) -> Result:
        from click.testing import CliRunner

        from shellflow.commands import main
        from tests.conftest import _MainWrapper

        owners: dict[str, str | None] = {"SHELLFLOW_TOKEN": None, **(env or {})}  # no token
        got = CliRunner().invoke(_MainWrapper(main), list(args), input=input or "", env=owners)
        result = Result(got.exit_code, got.stdout, got.stderr)
        assert result.code == 0, f"flow {' '.join(args)} -> {result.code}\n{result.stderr}"
        return result

    return run


def add_personas(owner: Owner, right: str, viewing: tuple[str, ...] = ()) -> None:
    """The four users, their grants, the role and bert's revocation, added by the owner."""
    for name in USERS:
        owner("add", "user", "-n", name, "-e", f"{name}@example.org", "--password-stdin",
              input=PASSWORD + "\n")  # fmt: skip
    owner("add", "privilege", "-u", SOLO, "-n", right)
    owner("add", "role", "-n", ROLE)
    for granted in (right, ROLE_OTHER_RIGHT):
        owner("add", "privilege", "-r", ROLE, "-n", granted)
    for member in (ANNA, BERT):
        owner("update", "user", "-n", member, "--add-role", ROLE)
        for extra in viewing:
            owner("add", "privilege", "-u", member, "-n", extra)
    for extra in viewing:
        owner("add", "privilege", "-u", SOLO, "-n", extra)
    revoked = owner("delete", "privilege", "-u", BERT, "-n", right)
    assert "revoked for this user alone" in revoked.stderr


def tokens(owner: Owner) -> dict[str, str]:
    """A token per persona, created by the owner (``flow token create -u NAME``)."""
    made = {}
    for name in USERS:
        made[name] = owner("token", "create", "-u", name, "--name", "e2e").stdout.strip()
        assert made[name].startswith("sf_")
    return made


def login(flow: FlowRunner, env: Mapping[str, str], name: str, folder: Path) -> dict[str, str]:
    """Log ``name`` in with ``flow login --password-stdin`` in a subprocess; the environment
    under which later ``flow`` commands act with that session (its own config folder)."""
    session = {**env, "XDG_CONFIG_HOME": str(folder / f"config-{name}")}
    logged = flow("login", "-u", name, "--password-stdin", input=PASSWORD + "\n", env=session)
    assert logged.code == 0, logged.stderr
    me = json.loads(flow.ok("whoami", "--json", env=session).stdout)
    assert (me["user"], me["source"], me["owner"]) == (name, "login", False)
    return session


def with_token(env: Mapping[str, str], token: str) -> dict[str, str]:
    return {**env, "SHELLFLOW_TOKEN": token}


def as_owner(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with neither a token nor a session: the owner acts."""
    out = dict(env or {})
    out.pop("SHELLFLOW_TOKEN", None)
    out.pop("XDG_CONFIG_HOME", None)  # the test's own folder: no session there
    return out


def refusal(name: str, right: str, target: str) -> str:
    return f"flow: {name} lacks the {right} right on {target}\n"


def assert_refused(result: Result, name: str, right: str, target: str) -> None:
    """Exit 5 and one line naming the user, the right and the object."""
    assert (result.code, result.stderr) == (5, refusal(name, right, target)), result
    assert result.stdout == ""


def trail(flow: FlowRunner, env: Mapping[str, str], *args: str) -> list[dict[str, Any]]:
    """``flow ls audit --json`` as the owner (a subprocess), newest first."""
    out = flow.ok("ls", "audit", "--json", "--rows", "1000", *args, env=as_owner(env)).stdout
    return [json.loads(line) for line in out.splitlines()]


def refusals(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(who, right, object) of every refusal in an audit trail."""
    return {(r["who"], r["kind"], r["name"]) for r in rows if r["action"] == "refused"}


def logins(rows: list[dict[str, Any]]) -> set[str]:
    return {r["who"] for r in rows if r["action"] == "login"}
