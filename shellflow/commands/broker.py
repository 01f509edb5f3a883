"""``flow broker``: the embedded broker's life (only for unix-socket Redis URLs)."""

from __future__ import annotations

from pathlib import Path

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info
from shellflow.errors import UsageError
from shellflow.redact import mask_url


def _socket(app: AppContext) -> Path:
    from shellflow.urls import socket_path

    path = socket_path(app.settings.broker)
    if path is None:
        raise UsageError(f"the broker {mask_url(app.settings.broker)} is not the embedded one")
    return path


@click.group()
def broker() -> None:
    """Start, stop or check the broker."""


@broker.command("start")
@pass_app
def broker_start(app: AppContext) -> None:
    """Start the embedded broker unless it runs already."""
    from shellflow.engine.transport.embedded_broker import ensure_running

    path = ensure_running(_socket(app))
    info(f"Embedded broker running on {path}")


@broker.command("stop")
@pass_app
def broker_stop(app: AppContext) -> None:
    """Stop the embedded broker (queued calls are kept on disk)."""
    from shellflow.engine.transport.embedded_broker import stop

    stopped = stop(_socket(app))
    info("Embedded broker stopped" if stopped else "Embedded broker was not running")


@broker.command("status")
@pass_app
def broker_status(app: AppContext) -> None:
    """Exit 0 when the embedded broker answers, 6 when it does not."""
    from shellflow.engine.transport.embedded_broker import answers
    from shellflow.errors import ServiceUnavailable

    path = _socket(app)
    if not answers(path):
        raise ServiceUnavailable("embedded broker", app.settings.broker, "not running")
    info(f"Embedded broker running on {path}")
