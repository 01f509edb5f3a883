"""The Python API's socket commands start ``flow``; when no ``flow`` script is found they
start ``python -P -m shellflow``, which imports nothing from the folder it runs in (the
process holds the settings: the database URL, tokens)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_the_fallback_imports_nothing_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.client import commands

    python = sys.executable  # the test's own (commands.sys is this same sys module)
    bare = tmp_path / "bin"  # an interpreter with no flow script beside it, none on PATH
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    monkeypatch.setattr(commands.sys, "executable", str(bare / "python3"))
    monkeypatch.setenv("PATH", str(bare))
    argv = commands.flow_program()
    assert argv == [str(bare / "python3"), "-P", "-m", "shellflow"]
    work = tmp_path / "work"
    marker = tmp_path / "imported"
    planted = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for package in ("click", "shellflow"):
        (work / package).mkdir(parents=True)
        (work / package / "__init__.py").write_text(planted)
    done = subprocess.run([python, *argv[1:], "--help"], cwd=work, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Usage: " in done.stdout
    assert not marker.exists(), marker.read_text()
