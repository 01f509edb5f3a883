"""Trusted code only (issue 17): an agent clones only a repository the deployment allows,
and runs the commit its processor records until ``flow proc update --pull``.

On PostgreSQL the allowlist is empty by default (nothing is allowed); the test databases
are made with ``*`` (tests/templates.py), so these tests unset or narrow it first.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FlowRunner
from tests.engine.agents import agent_log, processor, running_agent, wait_status
from tests.engine.conftest import Deployment, build_network, deploy
from tests.engine.repos import commit, examples_repo, git

SAMPLE = "examples/processors/pyfi/processors/sample.py"


def call(d: Deployment, socket: str, data: str) -> str:
    out = d.ok("task", "run", "-s", socket, "--data", f'"{data}"', "--timeout", "90")
    return str(out.stdout.strip())


def mirrors(d: Deployment) -> list[Path]:
    """The repositories the agent cloned under its home."""
    return sorted((Path(d.env["SHELLFLOW_HOME"]) / "git").glob("*/mirror.git"))


def test_postgresql_refuses_every_repository_until_allowed_and_pins_the_commit(
    flow: FlowRunner, tmp_path: Path
) -> None:
    with deploy("distributed", flow) as d:
        names = build_network(d)
        proc, socket = names["processor"], names["do_something"]
        repo = examples_repo(tmp_path / "repo")
        d.ok("update", "processor", "-n", proc, "-g", str(repo))
        d.ok("config", "unset", "repos.allow")  # PostgreSQL's default: nothing is allowed
        refused = d.run("update", "processor", "-n", proc, "-br", "main")
        assert refused.code == 5, refused.stderr
        assert "repos.allow is not set" in refused.stderr
        assert "flow config set repos.allow" in refused.stderr
        with running_agent(d):
            row = wait_status(d, proc, "error")
            assert "not allowed" in row["status_reason"], row
            assert "repos.allow is not set" in row["status_reason"]
            assert mirrors(d) == []  # refused before any clone

            # Allowed now: the agent's next try deploys it, nobody restarts anything.
            d.ok("config", "set", "repos.allow", f"file://{tmp_path}/*")
            assert call(d, socket, "a") == "TEXT:a", agent_log(d)
            first = git(repo, "rev-parse", "HEAD")
            assert processor(d, proc)["deployed_commit"] == first

            # The branch moves: a restart still runs the recorded commit...
            sample = (repo / SAMPLE).read_text().replace('"TEXT:"', '"NEW:"')
            second = commit(repo, {SAMPLE: sample})
            d.ok("proc", "restart", "-n", proc, "--wait", "--timeout", "90")
            assert call(d, socket, "b") == "TEXT:b"
            assert processor(d, proc)["deployed_commit"] == first

            # ... and --pull deploys the branch's new tip, recording it.
            pulled = d.ok("proc", "update", "-n", proc, "--pull", "--wait", "--timeout", "90")
            assert f"runs commit {second}" in pulled.stderr
            assert call(d, socket, "c") == "NEW:c"
            assert processor(d, proc)["deployed_commit"] == second

            # A narrower list: the processor's repository is refused on its next deployment.
            d.ok("config", "set", "repos.allow", "https://github.com/myorg/*")
            d.ok("proc", "restart", "-n", proc, "--timeout", "90")
            row = wait_status(d, proc, "error")
            assert "'https://github.com/myorg/*'" in row["status_reason"], row


def test_embedded_allows_every_repository_until_a_list_is_set(flow: FlowRunner) -> None:
    with deploy("embedded", flow) as d:
        names = build_network(d)  # added while no list is set: the embedded default allows it
        proc = names["processor"]
        assert d.ok("config", "get", "repos.allow").stdout == ""
        d.ok("config", "set", "repos.allow", "https://github.com/myorg/*")
        with running_agent(d):
            row = wait_status(d, proc, "error")
            assert "not allowed" in row["status_reason"], row
            assert "'https://github.com/myorg/*'" in row["status_reason"]
            assert mirrors(d) == []  # refused before any clone
            assert processor(d, proc)["deployed_commit"] is None
