"""An agent keeps its home private and its git token secret (issue 17, points 3 and 4).

Everything the agent makes in the home (git mirrors, virtualenvs, logs, the workers' folders)
is 0700/0600 because it runs with umask 077; a clone that fails on a URL holding a token is
reported, in the status and the log, with the token masked.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from tests.conftest import FlowRunner
from tests.engine.agents import agent_log, running_agent, wait_status
from tests.engine.conftest import build_network, deploy
from tests.engine.repos import examples_repo
from tests.engine.test_private_home import _loose, _other_user, _reads, _walk

SECRET = "agent-git-SECRET"
HARNESS = ("worker-", "agent-test.log", "none.ini")  # the test's own files, not shellflow's


def test_an_agent_home_stays_private_and_a_git_token_secret(
    flow: FlowRunner, tmp_path: Path
) -> None:
    other = _other_user() if os.geteuid() == 0 else None
    with deploy("embedded", flow) as d:
        home = Path(d.env["SHELLFLOW_HOME"])
        home.chmod(0o755)  # an older shellflow's home: the first command repairs it
        names = build_network(d)
        proc = names["processor"]
        d.ok("update", "processor", "-n", proc, "-g",
             f"https://ci:{SECRET}@127.0.0.1:1/team/repo.git")  # fmt: skip
        with running_agent(d):
            row = wait_status(d, proc, "error")
            assert "https://ci:***@127.0.0.1:1/" in row["status_reason"]
            d.ok("update", "processor", "-n", proc, "-g", str(examples_repo(tmp_path / "repo")))
            secret = f"argument-{uuid.uuid4().hex}"
            out = d.ok("task", "run", "-s", names["do_something"], "--data", json.dumps(secret),
                       "--timeout", "90")  # fmt: skip
            assert secret in out.stdout, agent_log(d)
            log = agent_log(d)
            assert SECRET not in log and "ci:***@" in log
            made = {p.relative_to(home).parts[0] for p in _walk(home)}
            assert {"git", "venvs", "logs", "workers"} <= made, made
            # The mirror of a local repository hard-links its git objects (same inode, mode
            # and contents as the user's own files): only the home's 0700 guards those.
            loose = [p for p in _loose(home, skip=HARNESS) if os.stat(p.split()[0]).st_nlink == 1]
            assert loose == [], "\n".join(loose)
        if other is None:
            return
        home.chmod(0o711)
        files = [p for p in _walk(home, skip=HARNESS) if p.is_file() and not p.is_symlink()]
        readable = [str(p) for p in files if _reads(other, p)]
        assert readable == []
