"""The import contracts of pyproject.toml (DESIGN.md's layers) hold.

``make lint`` runs ``lint-imports``; this runs it too, so ``make test`` fails on an upward
import even where lint is skipped. It runs the command rather than import-linter's internals:
the command is the public interface, and CI's lint job sees exactly the same thing. A second
test builds a small package that breaks two contracts, so a check that could never fail
(a wrong config path, a contract matching nothing) does not pass unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
# Beside the interpreter running the tests: the virtualenv's, installed by the test extra.
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract_names() -> dict[str, str]:
    """Contract id -> name, as pyproject.toml states them."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {c["id"]: c["name"] for c in config["tool"]["importlinter"]["contracts"]}


def lint_imports(config: Path, cwd: Path, pythonpath: str | None = None) -> tuple[int, str]:
    """Run ``lint-imports`` on a config file; its exit code and report."""
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} missing: pip install -e '.[test]'"
    env = dict(os.environ, COLUMNS="300")  # one line per contract, whatever its name's length
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def verdicts(report: str) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from the summary of a report."""
    found = re.findall(r"^(.+) (KEPT|BROKEN)$", report, re.MULTILINE)
    return {name.strip(): verdict for name, verdict in found}


def test_every_import_contract_is_kept() -> None:
    code, report = lint_imports(PYPROJECT, cwd=ROOT)
    assert code == 0, report
    assert verdicts(report) == {name: "KEPT" for name in contract_names().values()}, report


def test_contracts_catch_an_upward_import(tmp_path: Path) -> None:
    """A model module importing click, and the engine inside a function, and the records
    importing the worker break exactly the layers, the model's and the engine's contracts."""
    fake = tmp_path / "shellflow"
    engine = ("fleet", "worker", "dataflow", "calls", "records", "transport")
    packages = (
        "",
        "commands",
        "tui",
        "services",
        "client",
        "engine",
        "model",
        *(f"engine/{p}" for p in engine),
    )
    for package in packages:
        (fake / package).mkdir(parents=True, exist_ok=True)
        (fake / package / "__init__.py").write_text("")
    floor = ("errors", "redact", "forks", "printable", "private", "engine/pids")
    for module in ("config", "urls", "process_state", "values", *floor):
        (fake / f"{module}.py").write_text("")
    (fake / "model" / "bad.py").write_text(
        "import click\n\n\ndef f():\n    from shellflow import engine\n"
    )
    (fake / "engine" / "records" / "bad.py").write_text("from shellflow.engine import worker\n")
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    # The fake package comes first on the path, ahead of the installed shellflow.
    code, report = lint_imports(tmp_path / "pyproject.toml", tmp_path, pythonpath=str(tmp_path))
    assert code != 0, report
    names = contract_names()
    broken = {name for name, verdict in verdicts(report).items() if verdict == "BROKEN"}
    expected = {names["layers"], names["model-no-messaging-or-ui"], names["engine-layers"]}
    assert broken == expected, report
    assert "shellflow.model.bad -> shellflow.engine" in report
