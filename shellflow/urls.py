"""Which backend a URL names: the one classifier every layer asks (no third-party imports).

A URL's scheme is all shellflow reads to choose a transport, a result path, a live channel
or a database dialect, so it is read here once instead of by string matching in each caller.
Redis over a unix socket is written three ways (``redis+socket://``, as kombu and Celery name
it, and ``unix://`` or ``socket://``, as redis-py and users do); all three are one backend,
and :func:`transport_url` turns them into the form kombu and Celery accept.

It sits beside ``shellflow.config``, below the model, so the model, the engine, the client
and the dashboard can all import it; keep it free of imports beyond the standard library:
``flow --version`` loads it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path


class Backend(StrEnum):
    """The services a shellflow URL can name."""

    REDIS = "redis"  # redis:// and rediss:// (TLS), over TCP
    REDIS_SOCKET = "redis+socket"  # a unix socket: the embedded broker is one
    AMQP = "amqp"  # RabbitMQ: amqp://, amqps:// (TLS), pyamqp://
    RPC = "rpc"  # Celery's result backend over the AMQP broker
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MEMORY = "memory"  # kombu's in-process transport (tests, examples)
    OTHER = "other"  # anything else: left to kombu, Celery or SQLAlchemy to accept or refuse


SOCKET_SCHEMES = ("redis+socket", "unix", "socket")
TLS_SCHEMES = ("rediss", "amqps")
_SCHEMES = {
    "redis": Backend.REDIS,
    "rediss": Backend.REDIS,
    **dict.fromkeys(SOCKET_SCHEMES, Backend.REDIS_SOCKET),
    "amqp": Backend.AMQP,
    "amqps": Backend.AMQP,
    "pyamqp": Backend.AMQP,
    "rpc": Backend.RPC,
    "memory": Backend.MEMORY,
}
# Databases name a driver after a "+" (postgresql+psycopg2://, sqlite+pysqlite://).
_DATABASES = {
    "sqlite": Backend.SQLITE,
    "postgresql": Backend.POSTGRESQL,
    "postgres": Backend.POSTGRESQL,
}


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case (``postgresql+psycopg2`` for ``postgresql+psycopg2://``)."""
    scheme, colon, _ = str(url).strip().partition(":")
    return scheme.lower() if colon else ""


def backend_of(url: str) -> Backend:
    """The backend ``url`` names (:data:`Backend.OTHER` when shellflow does not know it)."""
    scheme = scheme_of(url)
    known = _SCHEMES.get(scheme)
    if known is not None:
        return known
    return _DATABASES.get(scheme.partition("+")[0], Backend.OTHER)


def is_redis(url: str) -> bool:
    """Redis, over TCP (with or without TLS) or a unix socket."""
    return backend_of(url) in (Backend.REDIS, Backend.REDIS_SOCKET)


def is_amqp(url: str) -> bool:
    """An AMQP broker (RabbitMQ)."""
    return backend_of(url) is Backend.AMQP


def uses_tls(url: str) -> bool:
    """Whether the URL asks for TLS (the hand-written wire clients speak plain TCP only)."""
    return scheme_of(url) in TLS_SCHEMES


def socket_path(url: str) -> Path | None:
    """The unix socket of a Redis socket URL (any of its three schemes); None otherwise."""
    text = str(url).strip()
    if backend_of(text) is not Backend.REDIS_SOCKET or "://" not in text:
        return None
    rest = text.partition("://")[2].split("?", 1)[0].split("#", 1)[0]
    if not rest.startswith("/") and "@" in rest:  # unix://user:password@/path
        rest = rest.partition("@")[2]
    return Path(rest)


def transport_url(url: str) -> str:
    """The URL as kombu and Celery accept it: a unix-socket Redis URL as ``redis+socket://``.

    Any other URL is returned as it is.
    """
    text = str(url).strip()
    if backend_of(text) is Backend.REDIS_SOCKET and "://" in text:
        return "redis+socket://" + text.partition("://")[2]
    return url


# The backends each setting may name; anything else is a typing mistake, refused up front
# (exit 2) rather than left for a library to misread deep inside a command.
ROLES: dict[str, tuple[Backend, ...]] = {
    "db": (Backend.SQLITE, Backend.POSTGRESQL),
    "broker": (Backend.REDIS, Backend.REDIS_SOCKET, Backend.AMQP, Backend.MEMORY),
    "backend": (Backend.REDIS, Backend.REDIS_SOCKET, Backend.RPC),
    "pubsub": (Backend.REDIS, Backend.REDIS_SOCKET, Backend.AMQP),
}
LABELS = {"db": "database", "broker": "broker", "backend": "result backend", "pubsub": "pub/sub"}
_EXAMPLES = {
    "db": "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME",
    "broker": "redis://HOST:PORT/DB, redis+socket:///PATH or amqp://USER:PASSWORD@HOST:PORT//",
    "backend": "redis://HOST:PORT/DB, redis+socket:///PATH or rpc://",
    "pubsub": "redis://HOST:PORT/DB or redis+socket:///PATH",
}


def url_problem(role: str, url: str) -> str | None:
    """Why ``url`` cannot be the ``role`` setting (``db``, ``broker``, ``backend`` or
    ``pubsub``), in words a user can act on; None when it can.

    Only what can be told without connecting is checked: the scheme, the port, and a Redis
    database number.
    """
    from urllib.parse import urlsplit

    text = str(url).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding, in an environment variable
        return "it is not UTF-8 text"
    if not text.isprintable():
        return "it holds control characters"
    backend = backend_of(text)
    if backend not in ROLES[role] or "://" not in text:
        scheme = scheme_of(text)
        what = f"scheme {scheme!r}" if scheme else "URL without a scheme"
        return f"unsupported {LABELS[role]} {what}; use {_EXAMPLES[role]}"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return str(exc)
    if backend is Backend.REDIS:
        number = parts.path.strip("/")
        if number and not (number.isdigit() and int(number) < 2**31):
            return f"the Redis database {number!r} is not a number"
    return None
