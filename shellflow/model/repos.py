"""Which git repositories a deployment trusts: the ``repos.allow`` list of URL patterns.

An agent clones a processor's repository and runs its build code (``setup.py``, a build
backend) and its functions: whoever may name a repository runs code on every node. The
owner therefore lists the repositories the deployment trusts, as fnmatch-style patterns
(``https://github.com/myorg/*``, ``file:///srv/repos/*``), and every place that names or
fetches one checks it: ``flow add|update processor``, ``flow compose up``, the Python API
(all through :class:`shellflow.model.store.Store`) and the agent before any clone or fetch.

Where the list comes from, first found wins:

1. the database (``flow config set repos.allow ...``): one list that every agent and client
   of the deployment reads, row ``repos.allow`` of the ``settings`` table;
2. the ini file (``repos.allow = ...`` in its ``[shellflow]`` section), for a deployment
   whose owner prefers a file; a database value always wins over it, so a user's own ini
   file cannot widen what the owner allowed;
3. the default: on the embedded SQLite database, whose owner is its only user, every
   repository is allowed; on a server database (PostgreSQL) none is.

URLs are compared in one canonical form so that spellings of one repository match alike:
credentials are dropped (``https://user:TOKEN@host/x`` is ``https://host/x``; they are never
shown either), the scheme and host are lowercased, ``%``-escapes and ``..`` are resolved,
a trailing ``/`` or ``.git`` is dropped, ``user@host:path`` is ``ssh://host/path``, and a
local path is the ``file://`` URL of its absolute path (its symlinks resolved or not: either
spelling may match). Patterns get the same treatment, their ``*``, ``?`` and ``[...]`` kept.
"""

from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from shellflow.errors import PermissionDenied, UsageError
from shellflow.model import setting_rows

ALLOW = "repos.allow"
SET_HINT = f"flow config set {ALLOW} PATTERN... (the whole list)"
# A git "scp-like" address, user@host:path, as the agent tells it from a local path
# (``shellflow.engine.fleet.deploy.normalise``): anything else without ``://`` is a path.
_SCP = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>.*)$")


class RepoNotAllowed(PermissionDenied):
    """A repository outside the deployment's allowlist (exit 5, not allowed)."""


def _url_form(url: str) -> str:
    """``scheme://host[:port]/path`` without credentials, the path's escapes and dots resolved."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    path = unquote(parts.path)
    if scheme == "file":
        return _path_form(path, resolve=False)
    if path:
        path = posixpath.normpath(path)
        path = "" if path in (".", "/") else path
    path = path.rstrip("/").removesuffix(".git")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{host}{path}{query}"


def _path_form(path: str, *, resolve: bool) -> str:
    path = os.path.expanduser(path)
    path = os.path.realpath(path) if resolve else os.path.abspath(path)
    path = path.rstrip("/").removesuffix(".git") or "/"
    return f"file://{path}"


def _is_url(text: str) -> bool:
    return "://" in text


def forms(url: str) -> set[str]:
    """The canonical spellings of a repository URL (two for a local path behind a symlink)."""
    url = url.strip()
    if _is_url(url):
        canonical = _url_form(url)
        if canonical.startswith("file://"):
            return {canonical, _path_form(canonical[len("file://") :], resolve=True)}
        return {canonical}
    scp = _SCP.match(url)
    if scp:
        return {_url_form(f"ssh://{scp['host']}/{scp['path'].lstrip('/')}")}
    return {_path_form(url, resolve=False), _path_form(url, resolve=True)}


def shown(url: str) -> str:
    """A repository URL fit to print: its credentials dropped, everything else as given."""
    url = url.strip()
    if _is_url(url):
        parts = urlsplit(url)
        if "@" in parts.netloc:
            host = parts.netloc.rsplit("@", 1)[-1]
            return parts._replace(netloc=host).geturl()
        return url
    scp = _SCP.match(url)
    if scp:
        return f"{scp['host']}:{scp['path']}"
    return url


def pattern_form(pattern: str) -> str:
    """A pattern in the canonical form of :func:`forms` (its wildcards kept).

    A relative local path is refused: it would mean another folder for every reader.
    """
    text = pattern.strip()
    if not text:
        raise UsageError(f"{ALLOW}: an empty pattern")
    if text == "*":
        return text
    if text.lower().startswith("file://"):  # its rest may be a wildcard: never made absolute
        rest = unquote(text[len("file://") :])
        rest = posixpath.normpath(rest) if rest.startswith("/") else rest
        return "file://" + (rest.rstrip("/").removesuffix(".git") or "/")
    if _is_url(text):
        return _url_form(text)
    scp = _SCP.match(text)
    if scp:
        return _url_form(f"ssh://{scp['host']}/{scp['path'].lstrip('/')}")
    if not text.startswith(("/", "~")):
        raise UsageError(
            f"{ALLOW}: pattern {text!r} is a relative path; give a URL or an absolute path"
        )
    return _path_form(text, resolve=False)


def permits(patterns: Iterable[str], url: str) -> bool:
    """Whether any pattern matches any canonical spelling of ``url`` (case-sensitively)."""
    candidates = forms(url)
    for pattern in patterns:
        try:
            wanted = pattern_form(pattern)
        except UsageError:
            continue  # a relative pattern read from an ini file matches nothing
        if any(fnmatch.fnmatchcase(c, wanted) for c in candidates):
            return True
    return False


@dataclass(frozen=True)
class Allowlist:
    """The effective list: its patterns (None: none set anywhere), where it came from, and
    whether an unset list allows everything (the embedded SQLite database)."""

    patterns: tuple[str, ...] | None
    source: str
    open_default: bool

    def allows(self, url: str) -> bool:
        if self.patterns is None:
            return self.open_default
        return permits(self.patterns, url)

    def describe(self) -> str:
        """One line on what is allowed and why."""
        if self.patterns is None:
            if self.open_default:
                return f"{ALLOW} is not set: every repository is allowed (embedded database)"
            return f"{ALLOW} is not set: no repository is allowed until an owner sets it"
        listed = ", ".join(repr(p) for p in self.patterns) or "(empty)"
        return f"{ALLOW} ({self.source}): {listed}"

    def check(self, url: str) -> None:
        """Raise :class:`RepoNotAllowed` (exit 5) unless ``url`` is allowed."""
        if self.allows(url):
            return
        raise RepoNotAllowed(
            f"repository {shown(url)} is not allowed: {self.describe()}; "
            f"an owner changes it with: {SET_HINT}"
        )


def parse(value: str | None) -> tuple[str, ...] | None:
    """The patterns of a stored value (a JSON list); None for no value."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        data = value.split()
    if isinstance(data, str):
        data = [data]
    return tuple(str(p) for p in data if str(p).strip())


def split_ini(value: str | None) -> tuple[str, ...] | None:
    """An ini value's patterns: separated by spaces, commas or lines; None when empty."""
    if not value or not value.strip():
        return None
    return tuple(p for p in re.split(r"[\s,]+", value.strip()) if p)


def stored(conn: Any) -> tuple[str, ...] | None:
    """The database's list (an ORM session or a Core connection); None when unset."""
    return parse(setting_rows.read(conn, ALLOW))


def dialect_of(conn: Any) -> str:
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    return str(bind.dialect.name)


def effective(
    conn: Any, ini: tuple[str, ...] | None = None, ini_source: str = "ini file"
) -> Allowlist:
    """The list in force for the database ``conn`` talks to, the ini's as a fallback."""
    open_default = dialect_of(conn) == "sqlite"
    from_db = stored(conn)
    if from_db is not None:
        return Allowlist(from_db, "database", open_default)
    if ini is not None:
        return Allowlist(ini, ini_source, open_default)
    return Allowlist(None, "default", open_default)


def save(session: Any, patterns: Iterable[str], owner: str | None) -> tuple[str, ...]:
    """Store the list (replacing any), after checking every pattern; returns it."""
    kept = tuple(p.strip() for p in patterns)
    for pattern in kept:
        pattern_form(pattern)
    if not kept:
        raise UsageError(
            f"give at least one pattern (to remove the list: flow config unset {ALLOW})"
        )
    setting_rows.write(session, ALLOW, json.dumps(list(kept)), owner)
    return kept


def remove(session: Any) -> bool:
    """Remove the database's list; True when there was one."""
    return setting_rows.remove(session, ALLOW)
