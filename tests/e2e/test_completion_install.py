"""``pip install .`` puts the man pages and completion scripts under the prefix's share/.

A copy of the repository is built and installed (without its dependencies, which these
files do not need) into a fresh virtualenv; then ``man flow`` finds the page when only the
virtualenv's bin/ is on PATH, as man-db derives the man path from PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "*.egg-info", "__pycache__", "build", "dist", ".demo", ".*_cache"
)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with shellflow installed from a copy of the repository."""
    base = tmp_path_factory.mktemp("wheel")
    repo = base / "repo"
    shutil.copytree(ROOT, repo, ignore=IGNORE, symlinks=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "--no-input", "--quiet", "--disable-pip-version-check", str(repo)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def test_man_pages_are_installed(prefix: Path) -> None:
    man1 = prefix / "share" / "man" / "man1"
    shipped = sorted(p.name for p in (ROOT / "man").glob("*.1"))
    assert {"flow.1", "flow-task-run.1", "flow-ls-calls.1"} <= set(shipped)
    assert sorted(p.name for p in man1.glob("*.1")) == shipped
    assert (man1 / "flow.1").read_text() == (ROOT / "man" / "flow.1").read_text()


@pytest.mark.parametrize(
    ("installed", "shipped"),
    [
        ("share/bash-completion/completions/flow", "flow.bash"),
        ("share/zsh/site-functions/_flow", "_flow"),
        ("share/fish/vendor_completions.d/flow.fish", "flow.fish"),
    ],
)
def test_completions_are_installed(prefix: Path, installed: str, shipped: str) -> None:
    path = prefix / installed
    assert path.is_file() and not path.is_symlink()
    assert path.read_text() == (ROOT / "completions" / shipped).read_text()


def test_man_flow_finds_the_page_from_path(prefix: Path, tmp_path: Path) -> None:
    if shutil.which("man") is None:
        pytest.skip("man is not installed (apt-get install man-db)")
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env.update(PATH=f"{prefix / 'bin'}:/usr/bin:/bin", HOME=str(tmp_path), MANPAGER="cat",
               PAGER="cat", MANWIDTH="80", MAN_KEEP_STDERR="1")  # fmt: skip
    where = subprocess.run(["man", "-w", "flow"], env=env, capture_output=True, text=True)
    assert where.stdout.strip() == str(prefix / "share" / "man" / "man1" / "flow.1")
    sub = subprocess.run(["man", "-w", "flow-task-run"], env=env, capture_output=True, text=True)
    assert sub.stdout.strip() == str(prefix / "share" / "man" / "man1" / "flow-task-run.1")
    page = subprocess.run(["man", "flow"], env=env, capture_output=True, text=True, timeout=60)
    assert page.returncode == 0, page.stderr
    assert page.stderr == ""
    text = re.sub(r".\x08", "", page.stdout)
    assert "EXIT STATUS" in text and "SHELLFLOW_DB" in text
