"""shellflow.private: what a repair of a loose home changes, and what it never touches."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shellflow import private


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private, "_checked", set())  # each test repairs anew


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_loose_home_is_repaired_whole_and_said_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "shellflow.db").write_text("")
    (home / "logs" / "agent.log").write_text("")
    tool = home / "venvs" / "v" / "bin" / "tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("")
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    for path, mode in [(home, 0o755), (home / "shellflow.db", 0o644), (tool, 0o755),
                       (home / "logs" / "agent.log", 0o666), (outside, 0o644)]:  # fmt: skip
        path.chmod(mode)
    (home / "link").symlink_to(outside)
    said = private.repair_home(home)
    assert said is not None and "0755" in said and str(home) in said
    assert _mode(home) == 0o700 and _mode(home / "logs") == 0o700
    assert _mode(home / "shellflow.db") == 0o600 and _mode(home / "logs" / "agent.log") == 0o600
    assert _mode(tool) == 0o700  # still runs for its owner
    assert _mode(outside) == 0o644  # a symbolic link is never followed
    assert private.repair_home(home) is None  # once per process


def test_a_folder_that_is_no_shellflow_home_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "project"
    other.mkdir()
    (other / "notes.txt").write_text("")
    other.chmod(0o755)
    assert private.repair_home(other) is None
    assert _mode(other) == 0o755
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    empty.chmod(0o755)
    assert private.repair_home(empty) is None  # nothing to say, but made private
    assert _mode(empty) == 0o700
    sticky = tmp_path / "shared"
    sticky.mkdir()
    (sticky / "shellflow.db").write_text("")
    sticky.chmod(0o1777)
    assert private.repair_home(sticky) is None and _mode(sticky) == 0o1777
    assert private.repair_home(tmp_path / "missing") is None


def test_private_dir_and_file_ignore_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        folder = private.private_dir(tmp_path / "a" / "b")
        fd = private.private_file(folder / "f")
        os.close(fd)
        private.touch_private(folder / "db")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == 0o700 and _mode(folder) == 0o700
    assert _mode(folder / "f") == 0o600 and _mode(folder / "db") == 0o600
