"""Git repositories and Python packages made by tests, on local disk only (no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROCESSORS = ROOT / "examples" / "processors"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "shellflow tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "shellflow tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True,
        text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    """Write files, commit them all, and return the new commit's sha."""
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def new_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files, "initial")
    return path


def examples_repo(path: Path) -> Path:
    """A git repository holding the quick start's processors at ``examples/processors``."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        PROCESSORS, path / "examples" / "processors",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )  # fmt: skip
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the quick start's processors")
    return path


def pyproject(name: str, version: str, dependencies: tuple[str, ...] = ()) -> str:
    deps = ", ".join(f'"{d}"' for d in dependencies)
    return (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
    )


def local_package(folder: Path, name: str, version: str) -> Path:
    """A source folder of package ``name`` whose module reports ``__version__``."""
    write(folder, {
        "pyproject.toml": pyproject(name, version),
        f"{name}/__init__.py": f'__version__ = "{version}"\n',
    })  # fmt: skip
    return folder


def version_module(package: str) -> str:
    """A processor module whose function reports the version of ``package`` it imports."""
    return (
        f"import {package}\n\n\n"
        "def version(_=None):\n"
        f"    return {package}.__version__\n\n\n"
        "def where(_=None):\n"
        f"    return {package}.__file__\n"
    )
