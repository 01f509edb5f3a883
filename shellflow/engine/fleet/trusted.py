"""What an agent deploys: only an allowed repository, and the one commit its processor records.

The agent calls :func:`deploy_placed` instead of :func:`shellflow.engine.fleet.deploy.deploy`:

- before any clone or fetch it reads the repository allowlist (``repos.allow``, from the
  database, else from the agent's ini file; ``shellflow.model.repos``) and refuses a
  repository no pattern matches: the processor goes to ``error`` with the refusal as its
  ``status_reason``, and is tried again (with the agent's growing delay), so allowing the
  repository later deploys it without anyone restarting anything;
- a processor with no recorded commit has its pin (branch, tag, default branch or a short
  commit) resolved, and the full commit recorded as the processor's ``deployed_commit``,
  only while the processor still names the same source and no other agent recorded one
  first: when one did, this agent deploys the recorded commit instead, so every node of a
  processor runs the same code. From then on the recorded commit is what every agent
  deploys, on every start; ``flow proc update --pull`` clears it to resolve the pin again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine, func, select, update

from shellflow.config import Settings
from shellflow.engine.fleet.deploy import (  # its mirror, as checkout's
    Deployed,
    DeployError,
    Source,
    _fetched,
    _locked,
    deploy,
    repo_key,
)
from shellflow.engine.fleet.rows import PROCESSOR
from shellflow.engine.fleet.runas import Account
from shellflow.model.repos import effective, shown, split_ini


def check_allowed(engine: Engine, settings: Settings, gitrepo: str) -> None:
    """Raise ``RepoNotAllowed`` unless the deployment's allowlist allows ``gitrepo``."""
    with engine.connect() as conn:
        allowlist = effective(conn, split_ini(settings.repos_allow), f"ini {settings.ini_path}")
    allowlist.check(gitrepo)


def record(engine: Engine, processor_id: str, source: Source, sha: str) -> str | None:
    """Record ``sha`` as the processor's commit unless one is recorded or its source changed;
    the commit recorded afterwards (None: the source changed meanwhile, nothing recorded)."""
    p = PROCESSOR
    same_source = [
        func.coalesce(p.c[key], "") == (getattr(source, attr) or "")
        for key, attr in (("gitrepo", "gitrepo"), ("branch", "branch"), ("commit", "commit"),
                          ("gittag", "gittag"))
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            update(p)
            .where(p.c.id == processor_id, p.c.deployed_commit.is_(None), *same_source)
            .values(deployed_commit=sha)
        )
        recorded = conn.execute(
            select(p.c.deployed_commit).where(p.c.id == processor_id, *same_source)
        ).scalar()
    return str(recorded) if recorded else None


def deploy_placed(
    engine: Engine, settings: Settings, home: Path, processor_id: str, source: Source,
    build_env: Mapping[str, str] | None = None, account: Account | None = None,
) -> Deployed:  # fmt: skip
    """Check the repository is allowed, deploy the processor's code, record its commit;
    ``build_env`` and ``account`` are :func:`shellflow.engine.fleet.deploy.deploy`'s."""
    check_allowed(engine, settings, source.gitrepo)
    deployed = deploy(home, source, build_env, account)
    if source.resolved is None:
        recorded = record(engine, processor_id, source, deployed.commit)
        if recorded is not None and recorded != deployed.commit:  # another agent was first
            pinned = dataclasses.replace(source, resolved=recorded)
            deployed = deploy(home, pinned, build_env, account)
    return deployed


def find_commit(settings: Settings, gitrepo: str, commit: str) -> str | None:
    """The full commit that ``commit`` (a sha, maybe abbreviated) names in an allowed
    repository, None when it has none (``flow add|update processor --commit`` asks).

    The allowlist is checked first (``RepoNotAllowed``): nothing is fetched from a
    repository the deployment does not trust. The repository's mirror under this process's
    home is cloned or fetched as an agent's is (on the embedded default, it is the agents'
    own cache); ``DeployError`` when it cannot be reached.
    """
    from shellflow.model.db import get_engine

    check_allowed(get_engine(settings.db), settings, gitrepo)
    home, key = settings.home, repo_key(gitrepo)
    with _locked(home / "git" / f"{key}.lock"):
        source = Source(gitrepo, commit=commit)
        _, sha, warnings = _fetched(home / "git" / key / "mirror.git", source)
    if sha is None and warnings:
        raise DeployError(f"cannot check commit {commit} of {shown(gitrepo)}: {warnings[0]}")
    return sha
