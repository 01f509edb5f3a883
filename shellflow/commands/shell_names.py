"""Which socket names may become shell commands (``flow shell aliases | install``).

A socket command must never be code and never take the place of another command. Names
outside the one name rule (stored before it, or written into the database by hand) are
left out: each could hold ``$(...)``, a quote or a newline. So are names that would shadow
a command the user already has: an executable on ``PATH`` (``ls``, ``sudo``, ``flow``
itself) and, for aliases, a shell builtin or keyword (``cd``, ``if``), since an alias is
looked up before either. ``--allow-shadow`` lets the shadowing ones through; nothing lets a
name outside the rule through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shellflow.errors import Conflict
from shellflow.model.checks import valid_name

MARKER = "# shellflow socket command"

# Builtins and reserved words of sh, bash, zsh and fish that follow the name rule: an alias
# of this name would replace them in an interactive shell.
_WORDS = """
    alias bg bind break builtin caller case cd command compgen complete compopt continue
    coproc declare dirs disown do done echo elif else enable esac eval exec exit export false
    fc fg fi for function getopts hash help history if in jobs kill let local logout mapfile
    popd printf pushd pwd read readarray readonly return select set shift shopt source
    suspend test then time times trap true type typeset ulimit umask unalias unset until
    wait while
    autoload bindkey chdir compadd compdef disable emulate float foreach functions integer
    limit noglob nocorrect print pushln rehash repeat sched setopt unlimit unsetopt whence
    where which zle zmodload zstyle end
    abbr and argparse begin block commandline contains count emit fish_config funced
    funcsave isatty math not or realpath set_color status string switch
"""
SHELL_WORDS = frozenset(_WORDS.split())


def ours(path: Path) -> bool:
    """Whether ``path`` is a socket command ``flow shell install`` wrote."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return MARKER in handle.read(200)
    except OSError:
        return False


def on_path(name: str, skip: Path | None = None) -> Path | None:
    """The executable ``name`` on ``PATH`` that is not a socket command of ours (nor in
    ``skip``, the folder being installed into), if there is one."""
    skipped = skip.resolve() if skip is not None else None
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry:
            continue
        folder = Path(entry)
        try:
            if skipped is not None and folder.resolve() == skipped:
                continue
        except OSError:
            continue
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK) and not ours(candidate):
            return candidate
    return None


@dataclass
class Choice:
    """The socket names to write, and those left out (each with why)."""

    kept: list[str] = field(default_factory=list)
    shadowing: list[tuple[str, str]] = field(default_factory=list)  # (name, what it shadows)
    outside_rule: list[str] = field(default_factory=list)

    def refuse(self) -> None:
        """After the kept ones are written: exit 4 with one line naming those left out."""
        parts = []
        if self.shadowing:
            shadows = ", ".join(f"{name!r} ({what})" for name, what in self.shadowing)
            parts.append(f"would shadow {shadows}; --allow-shadow includes them")
        if self.outside_rule:
            bad = ", ".join(repr(name) for name in self.outside_rule)
            parts.append(
                f"break the name rule: {bad}; rename them with"
                " 'flow update socket -n NAME --rename NEW'"
            )
        if parts:
            left = len(self.shadowing) + len(self.outside_rule)
            raise Conflict(f"left out {left} socket(s) that " + "; and ".join(parts))


def choose(
    names: Iterable[str], *, allow_shadow: bool, aliases: bool, folder: Path | None = None
) -> Choice:
    """Split socket names into those safe to write and those left out."""
    choice = Choice()
    for name in names:
        if not valid_name(name):
            choice.outside_rule.append(name)
            continue
        if not allow_shadow:
            if aliases and name in SHELL_WORDS:
                choice.shadowing.append((name, "a shell builtin"))
                continue
            found = on_path(name, skip=folder)
            if found is not None:
                choice.shadowing.append((name, str(found)))
                continue
        choice.kept.append(name)
    return choice
