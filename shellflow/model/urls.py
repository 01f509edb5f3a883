"""Database URL handling shared by the ORM and the light read path (no SQLAlchemy here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from shellflow.urls import LABELS, Backend, backend_of, scheme_of, url_problem

if TYPE_CHECKING:
    from shellflow.config import Settings

SUPPORTED = ("sqlite", "postgresql")


def dialect_of(url: str) -> str:
    """``sqlite`` or ``postgresql`` (the two databases shellflow supports), else the scheme.

    The backend is read by ``shellflow.urls``, the one classifier of URLs.
    """
    backend = backend_of(url)
    if backend in (Backend.SQLITE, Backend.POSTGRESQL):
        return backend.value
    return scheme_of(url).partition("+")[0]


def require_supported(url: str) -> str:
    """The URL's dialect; a usage error (exit 2) for anything shellflow cannot store in."""
    dialect = dialect_of(url)
    if dialect not in SUPPORTED:
        from shellflow.errors import UsageError
        from shellflow.redact import mask_url

        raise UsageError(
            f"unsupported database URL {mask_url(url)!r}: use sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/NAME"
        )
    return dialect


def sqlalchemy_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2, the driver shellflow installs."""
    if dialect_of(url) == "postgresql":
        rest = url.split("://", 1)[1]
        return f"postgresql+psycopg2://{rest}"
    return url


def libpq_url(url: str) -> str:
    """The same URL as libpq understands it (no ``+driver`` part)."""
    return "postgresql://" + url.split("://", 1)[1]


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL; None for an in-memory database."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def _shown(text: str) -> str:
    """Text that may hold bytes of another encoding, shown with those bytes as ``\\xe9``."""
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no decoding makes (only the Python API can)
        return ascii(text)[1:-1]


def check_settings(settings: Settings) -> Settings:
    """Refuse (exit 2) a URL setting a user mistyped: an unknown scheme, a bad port...

    Only the form is read; whether a server answers there is for the command to find.
    """
    from shellflow.errors import UsageError
    from shellflow.redact import mask_url

    home = settings.values["home"]
    try:
        home.value.encode("utf-8")
    except UnicodeEncodeError:
        shown = _shown(home.value)
        raise UsageError(f"home folder '{shown}' ({home.source}) is not UTF-8 text") from None
    for key in ("db", "broker", "backend", "pubsub"):
        setting = settings.values[key]
        problem = url_problem(key, setting.value)
        if problem:
            where = "--" + key if setting.source == "flag" else setting.source
            shown = _shown(mask_url(setting.value))
            raise UsageError(f"bad {LABELS[key]} URL '{shown}' ({where}): {problem}")
    return settings
