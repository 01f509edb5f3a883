"""What a processor's build needs and what pip said: kept apart from ``deploy`` so that
module stays about deploying (checkouts, virtualenvs, installing).

``backend_available`` decides whether pip may build without an isolated environment (the
agent's own packages satisfy the project's build requirements: no index needed, seconds
faster); ``pip_reason`` picks the one line of pip's output a processor's ``status_reason``
shows.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path


def backend_available(project: Path) -> bool:
    """True when the agent's environment satisfies the project's build requirements, so pip
    can build without an isolated environment (no index needed, seconds faster)."""
    from packaging.requirements import InvalidRequirement, Requirement

    requires: list[str] = ["setuptools>=40.8.0"]  # what pip assumes without pyproject.toml
    pyproject = project / "pyproject.toml"
    if pyproject.exists():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return False
        build = data.get("build-system")
        if isinstance(build, dict) and "requires" in build:
            requires = list(build.get("requires") or [])
    for text in requires:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement:
            return False
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(version, prereleases=True):
            return False
    return True


def pip_reason(output: str) -> str:
    """The telling line of pip's output: a Python exception raised by the build, else pip's
    own last ERROR line, else its last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pattern in (r"^\w*(Error|Exception|Exit)\b:?", r"^ERROR:", r"^error:"):
        telling = [ln for ln in lines if re.match(pattern, ln)]
        if telling:
            return " ".join(telling[-1].split())[:300]
    return " ".join((lines or ["pip failed"])[-1].split())[:300]
