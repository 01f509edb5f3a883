"""The options of each kind of object, shared by ``flow add`` and ``flow update``, and the
right each verb needs on a kind.

Short options follow the spec (chapter 10) so its examples work as written; for example
``flow add processor -n proc1 -g REPO -m pyfi.processors.sample -h localhost -c 5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from shellflow.commands.complete import names_of
from shellflow.commands.params import STRICT_BOOL, TEXT, whole
from shellflow.model.rights import RIGHTS

QUEUE_TYPES = ("topic", "direct", "fanout")
STATUSES = ("ready", "running", "paused", "stopped", "removed")


@dataclass(frozen=True)
class Opt:
    """One option: click declarations, the value's key, and whether ``add`` needs it."""

    decls: tuple[str, ...]
    key: str
    required: bool = False
    help: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    add_only: bool = False  # shown on ``add`` only
    update_only: bool = False
    secret: bool = False  # prompted without echo


def opt(*decls: str, key: str, required: bool = False, help: str = "", **kw: Any) -> Opt:
    flags = {k: kw.pop(k) for k in ("add_only", "update_only", "secret") if k in kw}
    return Opt(tuple(decls), key, required, help, kw, **flags)


# ``--password`` alone asks for the password (hidden) instead of taking the next argument.
ASK = "\0ask"


def password_options(what: str, required: bool = False) -> tuple[Opt, Opt]:
    """``-p/--password [PASSWORD]`` and ``--password-stdin``: a password given as an argument
    is seen by every local user (``ps``) and kept in shell history, so it works but warns
    (as ``docker login`` does); alone, ``--password`` prompts on a terminal."""
    how = "prompted on a terminal when left out" if required else "alone: prompted"
    return (
        opt(
            "-p", "--password", key="password", required=required, secret=True,
            is_flag=False, flag_value=ASK, metavar="[PASSWORD]",
            help=f"{what}; {how}; as an argument it is visible to other users (warned)",
        ),
        opt(
            "--password-stdin", key="password_stdin", is_flag=True, default=None,
            help="Read the password from the first line of stdin",
        ),
    )  # fmt: skip


NAME = opt("-n", "--name", key="name", required=True, help="Unique name", type=TEXT)
DESCRIPTION = opt("--description", key="description", help="Free text")
NETWORK = opt(
    "--network", key="network", help="Network it belongs to", shell_complete=names_of("network")
)

KIND_OPTIONS: dict[str, list[Opt]] = {
    "queue": [
        NAME,
        opt(
            "-t",
            "--type",
            key="qtype",
            type=click.Choice(QUEUE_TYPES),
            help="Exchange type [default: direct]",
        ),
        opt(
            "--durable/--transient",
            key="durable",
            default=None,
            help="Survive a broker restart [default: durable]",
        ),
        opt("--message-ttl", key="message_ttl", type=whole(0), help="Message time-to-live in ms"),
        opt(
            "--expires",
            key="expires",
            type=whole(1),
            help="Delete the queue after this many idle ms",
        ),
        opt(
            "--max-length",
            key="max_length",
            type=whole(-1),
            help="Most messages kept (-1: no limit)",
        ),
        NETWORK,
    ],
    "processor": [
        NAME,
        opt(
            "-m",
            "--module",
            key="module",
            required=True,
            help="Python module, e.g. some.module.path",
        ),
        opt("-g", "--gitrepo", key="gitrepo", required=True, help="Git repository URL or path"),
        opt("-br", "--branch", key="branch", help="Git branch to check out"),
        opt("--commit", key="commit", help="Git commit to pin (checked to exist: exit 3)"),
        opt("--tag", key="gittag", help="Git tag to pin"),
        opt("-h", "--hostname", key="hostname", help="Host to run on (localhost: the agent's own)"),
        opt(
            "-c",
            "-cs",
            "--concurrency",
            "--cpus",
            key="concurrency",
            type=whole(1),
            help="CPUs (worker processes) to occupy [default: 1]",
        ),
        opt(
            "--min-workers",
            key="min_workers",
            type=whole(1),
            help="Autoscaling: fewest pool processes (with --max-workers)",
        ),
        opt(
            "--max-workers",
            key="max_workers",
            type=whole(1),
            help="Autoscaling: most pool processes, at most -c (docs/engine.md)",
        ),
        opt(
            "-w",
            "--workers",
            key="workers",
            type=whole(1),
            help="Number of worker tasks",
        ),
        opt(
            "-r",
            "--retries",
            key="retries",
            type=whole(0),
            help="Retries of a failed call",
        ),
        opt(
            "--retry-delay",
            key="retrydelay",
            type=whole(0),
            help="Seconds between retries",
        ),
        opt(
            "--time-limit",
            key="timelimit",
            type=whole(1),
            help="Seconds a call may run",
        ),
        opt(
            "-rs",
            "--requested_status",
            "--requested-status",
            key="requested_status",
            type=click.Choice(STATUSES),
            help="The status agents should bring it to",
        ),
        opt("-b", "--beat/--no-beat", key="beat", default=None, help="Run its sockets' schedules"),
        opt(
            "-d",
            "--deploy/--no-deploy",
            key="deploy",
            default=None,
            help="Deploy it [default: deploy]",
        ),
        *password_options("Password guarding the processor (stored hashed)"),
        opt(
            "-rq", "--requirements", key="requirements", help="requirements file in the repository"
        ),
        opt("-mp", "--modulepath", key="modulepath", help="Repository path holding the module"),
        opt("-e", "--endpoint", key="endpoint", help="API endpoint path"),
        opt("-a", "--api", key="hasapi", type=STRICT_BOOL, help="Has an API endpoint"),
        DESCRIPTION,
    ],
    "socket": [
        NAME,
        opt(
            "-q",
            "--queue",
            key="queue",
            required=True,
            help="Queue it takes calls from",
            shell_complete=names_of("queue"),
        ),
        opt(
            "-pn",
            "--processor",
            "--processor-name",
            key="processor",
            required=True,
            help="Processor hosting it",
            shell_complete=names_of("processor"),
        ),
        opt("-t", "--task", key="task", required=True, help="Function of the processor's module"),
        opt(
            "-i",
            "--interval",
            key="interval",
            type=whole(1),
            help="Run every N seconds",
        ),
        opt("--cron", key="cron", help="Run on a cron schedule, e.g. '*/5 * * * *'"),
        opt(
            "-w",
            "--wait/--no-wait",
            key="wait",
            default=None,
            help="Wait for all plugged arguments",
        ),
        DESCRIPTION,
    ],
    "plug": [
        NAME,
        opt(
            "-q",
            "--queue",
            key="queue",
            required=True,
            help="Queue carrying its messages",
            shell_complete=names_of("queue"),
        ),
        opt(
            "-s",
            "--source",
            key="source",
            required=True,
            help="Socket whose output it carries",
            shell_complete=names_of("socket"),
        ),
        opt(
            "-t",
            "--target",
            key="target",
            required=True,
            help="Socket it feeds",
            shell_complete=names_of("socket"),
        ),
        opt(
            "-a",
            "--argument",
            key="argument",
            help="Named argument of the target it feeds",
            shell_complete=names_of("argument"),
        ),
        opt(
            "--type",
            key="type",
            type=click.Choice(("RESULT", "ERROR"), case_sensitive=False),
            callback=lambda _c, _p, v: v.upper() if v else v,
            help="Carry results or errors [default: RESULT]",
        ),
        DESCRIPTION,
    ],
    "argument": [
        NAME,
        opt(
            "-s",
            "--socket",
            key="socket",
            required=True,
            help="Socket whose task takes it",
            shell_complete=names_of("socket"),
        ),
        opt(
            "-p",
            "--position",
            key="position",
            type=whole(0),
            help="Position in the call",
        ),
        opt(
            "-k",
            "--kind",
            key="kind",
            type=whole(0, 4),
            help="Parameter kind (inspect.Parameter.kind)",
        ),
    ],
    "node": [
        NAME,
        opt("-h", "--hostname", key="hostname", help="Host name"),
        opt("-c", "--cpus", key="cpus", type=whole(0), help="CPUs it offers"),
        opt(
            "--scheduler",
            key="scheduler",
            help="Scheduler placing work on it",
            shell_complete=names_of("scheduler"),
        ),
        NETWORK,
    ],
    "agent": [
        NAME,
        opt(
            "--node",
            key="node",
            required=True,
            help="Node it runs on",
            shell_complete=names_of("node"),
        ),
        opt("-h", "--hostname", key="hostname", help="Host name"),
        opt("-c", "--cpus", key="cpus", type=whole(0), help="CPUs it manages"),
        opt("-p", "--port", key="port", type=whole(0, 65535), help="Health-check port"),
    ],
    "scheduler": [
        NAME,
        opt(
            "-s",
            "--strategy",
            key="strategy",
            type=click.Choice(("BALANCED", "EFFICIENT")),
            help="Placement strategy [default: BALANCED]",
        ),
        opt(
            "-i",
            "--interval",
            key="interval",
            type=whole(1),
            help="Seconds between passes",
        ),
        NETWORK,
    ],
    "deployment": [
        NAME,
        opt(
            "-pn",
            "--processor",
            key="processor",
            required=True,
            help="Processor to deploy",
            shell_complete=names_of("processor"),
        ),
        opt("-h", "--hostname", key="hostname", required=True, help="Host to deploy on"),
        opt(
            "-c",
            "--cpus",
            key="cpus",
            type=whole(1),
            help="CPUs it occupies [default: 1]",
        ),
    ],
    "network": [NAME],
    "user": [
        NAME,
        opt("-e", "--email", key="email", required=True, help="E-mail address"),
        *password_options("Password (stored as an argon2 hash)", required=True),
        opt(
            "--add-role",
            key="add_role",
            multiple=True,
            default=None,
            update_only=True,
            help="Give a role",
            shell_complete=names_of("role"),
        ),
        opt(
            "--remove-role",
            key="remove_role",
            multiple=True,
            default=None,
            update_only=True,
            help="Take a role away",
            shell_complete=names_of("role"),
        ),
    ],
    "role": [NAME],
    "privilege": [
        opt(
            "-n",
            "--name",
            key="name",
            required=True,
            type=click.Choice(RIGHTS),
            metavar="RIGHT",
            help="Right to grant (see 'flow ls rights')",
        ),
        opt("-u", "--user", key="user", help="User receiving it", shell_complete=names_of("user")),
        opt("-r", "--role", key="role", help="Role receiving it", shell_complete=names_of("role")),
        opt(
            "--processor",
            key="processor",
            help="Only on this processor (READ_CALL, LISTEN, START|STOP|PAUSE|RESUME_PROCESSOR)",
            shell_complete=names_of("processor"),
        ),
    ],
}

PLURALS = {kind: kind + "s" for kind in KIND_OPTIONS}

# The right a verb needs on a kind when the rights table names no specific one.
_GENERIC = {"ADD": "CREATE", "LS": "READ", "UPDATE": "UPDATE", "DELETE": "DELETE"}


def right_for(verb: str, kind: str) -> str:
    """The specific right of a verb on a kind (``ADD_QUEUE``), or the generic one (``CREATE``)."""
    candidates = [f"{verb}_{kind.upper()}"]
    if verb == "LS":
        candidates = [f"LS_{PLURALS[kind].upper()}", f"READ_{kind.upper()}"]
    return next((c for c in candidates if c in RIGHTS), _GENERIC[verb])
