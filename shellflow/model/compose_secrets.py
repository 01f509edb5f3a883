"""Passwords in a compose file: exported as references the user fills, filled on ``up``.

``flow compose export`` must not print a git token (``https://ci:TOKEN@host/repo.git``) that
the file would then carry into a repository or a ticket. The password is written as
``${SHELLFLOW_SECRET_<PROCESSOR>}``; ``flow compose up|diff|down`` fill such a reference from
the environment variable it names, and a reference whose variable is not set is a problem of
the file (exit 2, naming the variable), never stored as the password. Only references of this
form are filled: any other ``${...}`` is left as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from shellflow.redact import mask_url, replace_password

PREFIX = "SHELLFLOW_SECRET_"
_REFERENCE = re.compile(r"\$\{(" + PREFIX + r"[A-Z0-9_]+)\}")


def variable(name: str) -> str:
    """The environment variable holding the password of processor ``name``."""
    return PREFIX + (re.sub(r"[^A-Z0-9]", "_", name.upper()) or "_")


def hide(url: str, name: str) -> str:
    """``url`` with its password replaced by a reference to :func:`variable`."""
    if mask_url(url) == url:
        return url  # no password
    return replace_password(url, "${" + variable(name) + "}")


def fill(text: str, environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """``text`` with its references filled; the names of the variables that are not set."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        found = env.get(match[1])
        if not found:
            missing.append(match[1])
            return match[0]
        return found

    return _REFERENCE.sub(value, text), missing
