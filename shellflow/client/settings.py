"""Which network the Python API talks to.

A script gets the same configuration as ``flow`` (command-line flags aside): the environment
(``SHELLFLOW_DB``, ``SHELLFLOW_BROKER``, ``SHELLFLOW_BACKEND``, ``SHELLFLOW_PUBSUB``,
``SHELLFLOW_HOME``, ``SHELLFLOW_INI``), then the ini file, then the embedded defaults. It is
read once, on the first call, so a module may define its sockets before anything is
configured. :func:`configure` fixes the settings explicitly for the whole process (values
given to it win over the environment, as flags do for ``flow``), and every API object also
takes a ``settings=`` argument of its own.

The settings are the process's, kept in its runtime object (``shellflow.process_state``); a
forked child keeps those of its parent, as it keeps its environment.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from shellflow import process_state
from shellflow.config import Settings, load_settings


class _Configured:
    """The settings fixed by :func:`configure` or read by :func:`current`, under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings: Settings | None = None

    def after_fork(self) -> None:
        self.lock = threading.Lock()  # the settings stay: a child is configured as its parent


_configured = process_state.own(__name__, _Configured())


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
    if settings is None:
        flags = {"home": home, "db": db, "broker": broker, "backend": backend, "pubsub": pubsub}
        from shellflow.model.urls import check_settings

        settings = check_settings(load_settings(flags=flags, ini=ini, environ=environ))
    with _configured.lock:
        _configured.settings = settings
    _private(settings)
    return settings


def _private(settings: Settings) -> None:
    """A script repairs a home an older shellflow left open, as ``flow`` does (logged)."""
    from shellflow.private import repair_home

    repaired = repair_home(settings.home)
    if repaired:
        import logging

        logging.getLogger("shellflow").warning("%s", repaired)


def current() -> Settings:
    """The configured settings, or those of the environment (read once, then kept)."""
    settings = _configured.settings
    if settings is None:
        with _configured.lock:
            if _configured.settings is None:
                _configured.settings = load_settings()
            settings = _configured.settings
        _private(settings)
    return settings


def reset() -> None:
    """Forget the configured settings: the next call reads the environment again."""
    with _configured.lock:
        _configured.settings = None


def resolve(settings: Settings | None) -> Settings:
    """An object's own settings if it has some, else the process's."""
    return settings if settings is not None else current()
