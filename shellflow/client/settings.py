"""Which network the Python API talks to.

A script gets the same configuration as ``flow`` (command-line flags aside): the environment
(``SHELLFLOW_DB``, ``SHELLFLOW_BROKER``, ``SHELLFLOW_BACKEND``, ``SHELLFLOW_PUBSUB``,
``SHELLFLOW_HOME``, ``SHELLFLOW_INI``), then the ini file, then the embedded defaults. It is
read once, on the first call, so a module may define its sockets before anything is
configured. :func:`configure` fixes the settings explicitly for the whole process (values
given to it win over the environment, as flags do for ``flow``), and every API object also
takes a ``settings=`` argument of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from shellflow.config import Settings, load_settings

_lock = threading.Lock()
_configured: Settings | None = None


def configure(
    settings: Settings | None = None,
    *,
    home: str | None = None,
    db: str | None = None,
    broker: str | None = None,
    backend: str | None = None,
    pubsub: str | None = None,
    ini: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Set the process's settings for the Python API and return them.

    ``configure(db="postgresql://...", broker="amqp://...")`` resolves like flags of
    ``flow``: the values given win, the rest comes from ``environ`` (default: the process's
    environment), the ini file and the defaults. ``configure(settings)`` takes a ready
    :class:`~shellflow.config.Settings`.
    """
    global _configured
    if settings is None:
        flags = {"home": home, "db": db, "broker": broker, "backend": backend, "pubsub": pubsub}
        settings = load_settings(flags=flags, ini=ini, environ=environ)
    with _lock:
        _configured = settings
    return settings


def current() -> Settings:
    """The configured settings, or those of the environment (read once, then kept)."""
    global _configured
    settings = _configured
    if settings is None:
        with _lock:
            if _configured is None:
                _configured = load_settings()
            settings = _configured
    return settings


def reset() -> None:
    """Forget the configured settings: the next call reads the environment again."""
    global _configured
    with _lock:
        _configured = None


def resolve(settings: Settings | None) -> Settings:
    """An object's own settings if it has some, else the process's."""
    return settings if settings is not None else current()
