"""The deployer: pinned checkouts, one virtualenv per (repo, commit), isolation, fallback.

Everything is local: repositories are made here with ``git init``, packages are source
folders made here, and pip runs with ``PIP_NO_INDEX=1``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shellflow.engine.fleet.deploy import (
    MARKER,
    Deployed,
    DeployError,
    Source,
    checkout,
    deploy,
    repo_key,
    worker_env,
)
from tests.engine.agents import pinned_version_repos
from tests.engine.repos import commit, examples_repo, git, new_repo


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # never the network, whatever pip is configured with
    return tmp_path / "home"


def run_in(deployed: Deployed, code: str) -> str:
    """Run Python code with the processor's interpreter, as its worker would run."""
    prelude = f"import sys; sys.path[:0] = {list(deployed.paths)!r}\n"
    done = subprocess.run(
        [str(deployed.python), "-P", "-c", prelude + code], env=worker_env(venv=deployed.venv),
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_checkout_pins_commit_tag_and_branch(tmp_path: Path, home: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"value.txt": "1\n"})
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    second = commit(repo, {"value.txt": "2\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    third = commit(repo, {"value.txt": "3\n"})
    git(repo, "checkout", "-q", "main")

    def read(source: Source) -> tuple[str, str]:
        sha, tree, warnings = checkout(home, source)
        assert warnings == []
        return sha, (tree / "value.txt").read_text()

    assert read(Source(str(repo))) == (second, "2\n")  # the default branch
    assert read(Source(str(repo), commit=first[:10])) == (first, "1\n")
    assert read(Source(str(repo), gittag="v1")) == (first, "1\n")
    assert read(Source(f"file://{repo}", branch="feature")) == (third, "3\n")
    assert read(Source(str(repo), branch="feature", commit=second)) == (second, "2\n")
    # A branch is followed: the cached clone fetches what was committed since.
    fourth = commit(repo, {"value.txt": "4\n"})
    assert read(Source(str(repo), branch="main")) == (fourth, "4\n")
    # ... while the worktree of an older commit does not move.
    _, tree, _ = checkout(home, Source(str(repo), commit=second))
    assert (tree / "value.txt").read_text() == "2\n"
    # A path and its file:// URL are one repository, cloned once.
    assert sorted(p.name for p in (home / "git").iterdir() if p.is_dir()) == [repo_key(str(repo))]
    with pytest.raises(DeployError, match="has no tag nope"):
        checkout(home, Source(str(repo), gittag="nope"))


def test_an_unclonable_repository_is_a_deploy_error(tmp_path: Path, home: Path) -> None:
    with pytest.raises(DeployError, match=r"cannot clone .*missing: fatal: .*missing"):
        deploy(home, Source(str(tmp_path / "missing")))


def test_deploy_installs_into_a_venv_reused_per_commit(tmp_path: Path, home: Path) -> None:
    repo = examples_repo(tmp_path / "repo")
    source = Source(str(repo), modulepath="examples/processors")
    first = deploy(home, source)
    assert first.installed and first.paths == () and first.warning is None
    where = run_in(first, "import pyfi.processors.sample as s; print(s.__file__)")
    assert where.startswith(str(first.venv) + "/")
    marker = first.venv / MARKER
    stamp = marker.stat().st_mtime_ns

    again = deploy(home, source)
    assert again.venv == first.venv and marker.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert json.loads(marker.read_text())["commit"] == first.commit

    sha = commit(repo, {"examples/processors/pyfi/processors/extra.py": "X = 1\n"})
    newer = deploy(home, source)
    assert newer.commit == sha and newer.venv != first.venv
    assert run_in(newer, "import pyfi.processors.extra as e; print(e.X)") == "1"
    assert (first.venv / MARKER).exists()  # the older commit's environment is kept


def test_shellflow_comes_after_the_processors_own_packages(tmp_path: Path, home: Path) -> None:
    repo = examples_repo(tmp_path / "repo")
    deployed = deploy(home, Source(str(repo), modulepath="examples/processors"))
    out = run_in(
        deployed,
        "import json, sys, sysconfig, shellflow, celery\n"
        "print(json.dumps([sys.path, sysconfig.get_paths()['purelib'], shellflow.__file__,"
        " celery.__file__]))",
    )
    path, own, shellflow_file, celery_file = json.loads(out)
    assert own.startswith(str(deployed.venv))
    import celery

    import shellflow

    assert shellflow_file == shellflow.__file__ and celery_file == celery.__file__
    shared = str(Path(celery.__file__).parent.parent)
    assert path.index(own) < path.index(shared)  # the processor's pins win


def test_a_failed_install_falls_back_to_the_checkout(tmp_path: Path, home: Path) -> None:
    repo = new_repo(tmp_path / "old", {
        "setup.py": "raise RuntimeError('this setup.py is too old for modern setuptools')\n",
        "oldmod.py": "def hello(_=None):\n    return 'hello from the checkout'\n",
    })  # fmt: skip
    deployed = deploy(home, Source(str(repo)))
    assert not deployed.installed
    assert deployed.paths == (str(deployed.checkout),)
    assert deployed.warning is not None and "pip install failed" in deployed.warning
    assert "too old for modern setuptools" in deployed.warning
    assert run_in(deployed, "import oldmod; print(oldmod.hello())") == "hello from the checkout"
    # The fallback is remembered with the environment, warning included.
    assert deploy(home, Source(str(repo))).warning == deployed.warning


def test_an_unpackaged_modulepath_is_served_from_the_checkout(tmp_path: Path, home: Path) -> None:
    repo = new_repo(tmp_path / "plain", {"code/plainmod.py": "VALUE = 'plain'\n"})
    deployed = deploy(home, Source(str(repo), modulepath="code"))
    assert deployed.paths == (str(deployed.checkout / "code"),)
    assert deployed.warning is not None and "no pyproject.toml or setup.py" in deployed.warning
    assert run_in(deployed, "import plainmod; print(plainmod.VALUE)") == "plain"
    with pytest.raises(DeployError, match="leaves the repository"):
        deploy(home, Source(str(repo), modulepath="../elsewhere"))


def test_two_processors_pin_different_versions_side_by_side(tmp_path: Path, home: Path) -> None:
    """One by a requirements file, one by its pyproject's dependencies; neither sees the other."""
    first, second = pinned_version_repos(tmp_path)
    one = deploy(home, Source(str(first), requirements="requirements.txt"))
    two = deploy(home, Source(str(second)))
    assert one.installed and two.installed, (one.warning, two.warning)
    assert run_in(one, "import first_proc; print(first_proc.version())") == "1.0"
    assert run_in(two, "import second_proc; print(second_proc.version())") == "2.0"
    assert run_in(one, "import sfdep; print(sfdep.__file__)").startswith(str(one.venv))
    # Neither the agent's environment nor the other processor has it.
    with pytest.raises(ImportError):
        __import__("sfdep")
    assert "second_proc" not in run_in(one, "import sys; print(sorted(sys.modules))")


def test_a_recorded_commit_wins_over_its_moved_branch(tmp_path: Path, home: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"value.txt": "1\n"})
    first = git(repo, "rev-parse", "HEAD")
    assert checkout(home, Source(str(repo), branch="main"))[0] == first
    second = commit(repo, {"value.txt": "2\n"})
    recorded = Source(str(repo), branch="main", resolved=first)
    assert recorded == Source(str(repo), branch="main")  # recording it is not a new source
    sha, tree, _ = checkout(home, recorded)
    assert (sha, (tree / "value.txt").read_text()) == (first, "1\n")
    assert checkout(home, Source(str(repo), branch="main"))[0] == second  # resolved again
