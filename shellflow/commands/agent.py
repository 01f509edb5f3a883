"""``flow agent start|stop|status``: the agent that deploys and serves a node's processors."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, print_object
from shellflow.commands.params import LOGLEVELS, SECONDS, TEXT, whole

if TYPE_CHECKING:
    from shellflow.engine.fleet.runas import Account

NODE_HELP = "Node name [default: this machine's hostname]"


def _node(node: str | None) -> str:
    import socket

    return node or socket.gethostname()


def _metrics_address(value: str | None) -> str | None:
    """--metrics-port checked as it is parsed: PORT or HOST:PORT."""
    if value is not None:
        from shellflow.engine.fleet.metrics_export import listen_address

        try:
            listen_address(value)
        except Exception as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return value


@click.group()
def agent() -> None:
    """Run the agent that deploys and serves processors."""


@agent.command("start")
@click.option("--node", type=TEXT, help=NODE_HELP)
@click.option("--cpus", type=whole(1), help="CPUs this node offers [default: all]")
@click.option("--detach", is_flag=True, help="Run in the background (pidfile and log in the home)")
@click.option("--loglevel", type=LOGLEVELS, default="INFO", show_default=True)
@click.option(
    "--run-as",
    "run_as",
    metavar="USER",
    type=TEXT,
    help="Run builds and workers as this unprivileged OS user (the agent must run as root;"
    " needs a server database and broker)",
)
@click.option("--create-user", is_flag=True, help="Create the --run-as user if it is missing")
@click.option(
    "--celery-events",
    is_flag=True,
    help="Its workers send Celery's task events and heartbeats (-E): 'celery events' and"
    " Flower then see the fleet (docs/engine.md: their cost)",
)
@click.option(
    "--metrics-port", metavar="[HOST:]PORT", type=TEXT,
    help="Serve the node's metrics for Prometheus on this port (every interface unless HOST)",
    callback=lambda _ctx, _param, value: _metrics_address(value),
)  # fmt: skip
@pass_app
def agent_start(
    app: AppContext,
    node: str | None,
    cpus: int | None,
    detach: bool,
    loglevel: str,
    run_as: str | None,
    create_user: bool,
    celery_events: bool,
    metrics_port: str | None,
) -> None:
    """Deploy and serve this node's processors until stopped (SIGTERM or Ctrl-C).

    Processors' code (their builds and their functions) never gets the database, broker or
    backend URLs in its environment. An agent running as root runs it as root unless
    --run-as names an unprivileged user (docs/security.md).
    """
    from shellflow.model.audit import set_front
    from shellflow.model.checks import check_name

    set_front("agent")  # what the agent changes is audited as the agent's
    node = _node(node)
    app.authorize("START_AGENT", f"node {node}")
    check_name("node", node)  # the agent creates the node and its agent by this name
    account = _account(app, run_as, create_user)
    if detach:
        from shellflow.engine.fleet.daemon import detach as start_detached

        extra: tuple[str, ...] = ("--run-as", run_as) if run_as else ()
        extra += ("--celery-events",) if celery_events else ()
        extra += ("--metrics-port", metrics_port) if metrics_port else ()
        pid, logfile = start_detached(app.settings, node, cpus, loglevel.upper(), extra)
        info(f"Agent of node {node!r} running in the background (pid {pid}); log: {logfile}")
        return
    import logging

    from shellflow.engine.fleet.agent import Agent
    from shellflow.engine.fleet.launch import keep_from_children
    from shellflow.private import use_private_umask
    from shellflow.redact import MaskingFormatter

    # Git checkouts, virtualenvs, logs and the workers' files in the home: 0700/0600. The
    # workers inherit it; they run as this same user, so their 0700 programs still run.
    use_private_umask()
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("shellflow")
    logger.addHandler(handler)
    logger.setLevel(loglevel.upper())
    if account is None and os.geteuid() == 0:
        logger.warning("the agent runs as root and so will the processors' code (builds and"
                       " functions); --run-as USER runs it as an unprivileged user")  # fmt: skip
    keep_from_children()  # its /proc/<pid>/environ may hold the settings
    exporter = None
    if metrics_port:  # the node's workers' metrics (shellflow.engine.fleet.metrics_export)
        from shellflow.engine.fleet.metrics_export import NodeMetrics
        from shellflow.engine.pids import ProcessId

        me = str(ProcessId.current())  # what the workers it starts carry (--agent)
        exporter = NodeMetrics(app.settings.pubsub, node, me, metrics_port).start()
    try:
        serving = Agent(app.settings, node=node, cpus=cpus, run_as=account)
        serving.celery_events = celery_events
        serving.run()
    finally:
        if exporter is not None:
            exporter.stop()


def _account(app: AppContext, run_as: str | None, create_user: bool) -> Account | None:
    """The run-as user's account, checked (and created if asked) before the agent starts."""
    from shellflow.errors import UsageError

    if run_as is None:
        if create_user:
            raise UsageError("--create-user needs --run-as USER")
        return None
    from shellflow.engine.fleet.runas import account, refuse_local_services

    refuse_local_services(app.settings)
    return account(run_as, app.settings.home, create=create_user)


@agent.command("stop")
@click.option("--node", type=TEXT, help=NODE_HELP)
@click.option(
    "--timeout",
    type=SECONDS,
    default=120.0,
    show_default=True,
    help="Seconds to wait for its workers to finish their calls",
)
@pass_app
def agent_stop(app: AppContext, node: str | None, timeout: float) -> None:
    """Stop this node's agent; its workers finish their running calls first."""
    from shellflow.engine.fleet.daemon import stop

    node = _node(node)
    app.authorize("START_AGENT", f"node {node}")
    pid = stop(app.settings.home, node, timeout)
    info(f"Agent of node {node!r} stopped (pid {pid})" if pid else f"No agent runs for {node!r}")


_WORKERS = (
    "SELECT w.name, p.name, w.process, w.hostname, w.concurrency, w.status, w.heartbeat"
    " FROM worker w JOIN processor p ON p.id = w.processor_id JOIN agent a ON a.id = w.agent_id"
    " JOIN node n ON n.id = a.node_id WHERE n.name = ? ORDER BY w.name"
)
_WORKER_KEYS = ("name", "processor", "pid", "hostname", "concurrency", "status", "heartbeat")


def _moment(value: Any) -> str | None:
    """A stored time as ISO 8601 UTC (SQLite hands back text, PostgreSQL a datetime)."""
    from datetime import UTC, datetime

    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(moment.astimezone(UTC).isoformat())


@agent.command("status")
@click.option("--node", type=TEXT, help=NODE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print it as one JSON object")
@pass_app
def agent_status(app: AppContext, node: str | None, as_json: bool) -> None:
    """Show this node's agent, its workers and whether the services they need answer
    (broker, result backend, live channels); exit 6 when the agent is not running."""
    from shellflow.engine.fleet.daemon import pidfile_path, running_pid
    from shellflow.engine.transport.health import service_states
    from shellflow.errors import ServiceUnavailable
    from shellflow.model.listing import list_objects

    node = _node(node)
    app.authorize("LS_AGENTS", f"node {node}")
    pid = running_pid(pidfile_path(app.settings.home, node))
    status: dict[str, Any] = {"node": node, "running": pid is not None, "pid": pid or None}
    with app.reader() as conn:
        rows = [r for r in list_objects(conn, "agent") if r.get("node") == node]
        if rows:
            row = rows[0]
            status |= {"agent": row["name"], "hostname": row["hostname"], "cpus": row["cpus"],
                       "status": row["status"], "heartbeat": row["heartbeat"]}  # fmt: skip
        status["workers"] = [
            {k: _moment(v) if k == "heartbeat" else v for k, v in zip(_WORKER_KEYS, r, strict=True)}
            for r in conn.query(_WORKERS, [node])
        ]
    settings = app.settings  # each service the workers need: "up", or "down: why"
    status |= service_states(settings.broker, settings.backend, settings.pubsub)
    print_object(status, as_json)
    if pid is None:
        raise ServiceUnavailable("agent", f"node {node}", "not running")
