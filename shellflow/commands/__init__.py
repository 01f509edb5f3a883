"""The ``flow`` command line.

Importing this package loads click and nothing else of weight: each command group's module
is imported only when that group runs (see :class:`LazyGroup`), and SQLAlchemy, Celery and
Textual are imported inside the commands that use them. So ``flow --help``, ``flow
--version`` and shell completion start in a few tens of milliseconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import click

from shellflow import __version__
from shellflow.commands.params import TEXT


class Lazy(NamedTuple):
    """Where a command group lives, and the one-line help ``flow --help`` shows for it."""

    module: str
    attribute: str
    short_help: str


# ``flow --help`` lists these without importing them; tests/unit/test_imports.py checks each
# short help against the loaded command's, so they cannot drift apart.
SUBCOMMANDS: dict[str, Lazy] = {
    "add": Lazy("shellflow.commands.objects", "add", "Add an object to the database."),
    "agent": Lazy(
        "shellflow.commands.agent", "agent", "Run the agent that deploys and serves processors."
    ),
    "broker": Lazy("shellflow.commands.broker", "broker", "Start, stop or check the broker."),
    "completion": Lazy(
        "shellflow.commands.completion", "completion", "Show or install shell completion scripts."
    ),
    "compose": Lazy(
        "shellflow.commands.compose", "compose", "Apply, compare or export network files (YAML)."
    ),
    "config": Lazy("shellflow.commands.config_cmd", "config", "Show or change the configuration."),
    "db": Lazy("shellflow.commands.db", "db", "Database operations."),
    "delete": Lazy("shellflow.commands.objects", "delete", "Delete an object from the database."),
    "login": Lazy(
        "shellflow.commands.identity",
        "login",
        "Log in: later commands act as USER until the session expires or you log out.",
    ),
    "logout": Lazy(
        "shellflow.commands.identity",
        "logout",
        "Log out: revoke this database's session and forget its token.",
    ),
    "listen": Lazy("shellflow.commands.listen", "listen", "Print a processor's live events."),
    "ls": Lazy("shellflow.commands.objects", "ls", "List database objects and their relations."),
    "node": Lazy("shellflow.commands.node", "node", "Cordon, uncordon or drain nodes."),
    "proc": Lazy(
        "shellflow.commands.proc",
        "proc",
        "Start, stop, pause, resume, restart, remove or update (--pull) processors.",
    ),
    "shell": Lazy("shellflow.commands.shell", "shell", "Sockets as shell commands."),
    "task": Lazy("shellflow.commands.task", "task", "Run and manage calls of sockets."),
    "token": Lazy(
        "shellflow.commands.identity",
        "token",
        "Create, list and revoke tokens for scripts and CI (used through SHELLFLOW_TOKEN).",
    ),
    "top": Lazy("shellflow.commands.top", "top", "Show the sockets' live metrics, busiest first."),
    "tui": Lazy("shellflow.commands.tui", "tui", "Open the terminal dashboard."),
    "update": Lazy("shellflow.commands.objects", "update", "Update a database object."),
    "whoami": Lazy(
        "shellflow.commands.identity",
        "whoami",
        "Show who acts, where that identity came from, and when it expires.",
    ),
    "worker": Lazy("shellflow.commands.worker", "worker", "Run workers."),
}


def later_completer(name: str, *args: str) -> Any:
    """A ``shell_complete`` callback that imports :mod:`shellflow.commands.complete` only
    when a completion is asked for: ``name`` is one of its callbacks, or with ``args`` one
    of its callback factories (``names_of``). Commands on the hot path (``flow task run``,
    ``flow ls calls``) then never read that module."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
        from shellflow.commands import complete as module

        target = getattr(module, name)
        return (target(*args) if args else target)(ctx, param, incomplete)

    return complete


def _help_width(max_width: int | None) -> int:
    """The width click would choose for help, without importing shutil (and bz2, lzma...)."""
    from click import formatting

    if formatting.FORCED_WIDTH is not None:  # set by click.testing.CliRunner
        return formatting.FORCED_WIDTH
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, max_width or 80) - 2, 50)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, not when the program starts."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if parent is None and "terminal_width" not in extra:
            extra["terminal_width"] = _help_width(self.context_settings.get("max_content_width"))
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Data printed with click.echo rather than output.write_lines: same quiet end,
            # but only when it was stdout that broke (not, say, a socket to a server).
            from shellflow.commands.output import ReaderGone, stdout_reader_gone

            if stdout_reader_gone():
                raise ReaderGone() from None
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            entry = self.lazy[cmd_name]
            # __import__ rather than importlib.import_module: ``python -X importtime`` sees it.
            module = __import__(entry.module, fromlist=[entry.attribute])
            command = getattr(module, entry.attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands from the table, importing none of them."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is not None and command.hidden:
                continue
            text = command.get_short_help_str(limit) if command else self.lazy[name].short_help
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """An unknown command is a usage error (exit 2) that suggests close names."""
        name = args[0] if args else ""
        unknown = name and not name.startswith("-") and self.get_command(ctx, name) is None
        if unknown and not ctx.resilient_parsing:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"no such command {name!r}{hint}")
        return super().resolve_command(ctx, args)


@click.group(
    cls=LazyGroup,
    lazy=SUBCOMMANDS,
    context_settings={"help_option_names": ["--help"], "max_content_width": 100},
    invoke_without_command=True,
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug output")
@click.option("-d", "--db", metavar="URL", type=TEXT, help="Model database URL [env SHELLFLOW_DB]")
@click.option(
    "--backend", metavar="URL", type=TEXT, help="Task result backend URL [env SHELLFLOW_BACKEND]"
)
@click.option(
    "--broker", metavar="URL", type=TEXT, help="Message broker URL [env SHELLFLOW_BROKER]"
)
@click.option("--pubsub", metavar="URL", type=TEXT, help="Live channel URL [env SHELLFLOW_PUBSUB]")
@click.option(
    "-i", "--ini", metavar="FILE", type=TEXT, help="Configuration file [env SHELLFLOW_INI]"
)
@click.option("-c", "--config", "configure", is_flag=True, help="Configure shellflow interactively")
@click.version_option(__version__, "--version", prog_name="flow")
@click.pass_context
def cli(
    ctx: click.Context,
    debug: bool,
    db: str | None,
    backend: str | None,
    broker: str | None,
    pubsub: str | None,
    ini: str | None,
    configure: bool,
) -> None:
    """Turn functions kept in git repositories into durable, network-wide shell commands.

    \b
    Exit codes: 0 ok, 1 a call failed, 2 usage, 3 not found, 4 already exists or
    conflicts, 5 permission denied, 6 a service is unavailable, 7 timed out, 130 interrupted.
    """
    from shellflow.commands.context import AppContext
    from shellflow.config import load_settings
    from shellflow.model.audit import set_front

    set_front("cli")

    flags = {"db": db, "backend": backend, "broker": broker, "pubsub": pubsub}
    # ``flow -i NEW.ini --config`` creates the file it names; otherwise it must exist.
    settings = load_settings(flags, ini=ini, debug=debug, ini_must_exist=not configure)
    if not configure and ctx.invoked_subcommand not in ("config", "completion"):
        from shellflow.model.urls import check_settings

        check_settings(settings)  # ``flow config show`` still shows, ``--config`` mends, one
    if not ctx.resilient_parsing and ctx.invoked_subcommand != "completion":
        from shellflow.private import repair_home

        repaired = repair_home(settings.home)  # made 0755 by an older shellflow
        if repaired:
            click.echo(f"flow: {repaired}", err=True)
    ctx.obj = AppContext(settings=settings)
    _apps[:] = [ctx.obj]  # for the entry point's record of a refusal (see main)
    if configure:
        from shellflow.commands.config_cmd import configure_interactively

        configure_interactively(ctx.obj)
        ctx.exit(0)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


# The context of the command running in this process: main() records a refusal raised
# anywhere in it (a command that checked a right itself) with its database and principal.
_apps: list[Any] = []


def _record_refusal(exc: Exception) -> None:
    """Append a refusal that no authorisation point recorded to the audit trail."""
    from shellflow.errors import PermissionDenied

    if not isinstance(exc, PermissionDenied) or not _apps or getattr(exc, "audited", False):
        return
    from shellflow.model.audit import record_refusal

    app = _apps[0]
    # The identity itself may be what was refused (an expired or unknown token): then
    # nobody was resolved, and the row names no principal rather than failing again.
    record_refusal(app.settings.db, app.resolved, exc)


def _interrupted() -> int:
    from shellflow.errors import ExitCode

    return _fail("interrupted", ExitCode.INTERRUPTED)


def _fail(message: str, code: int) -> int:
    """One line on stderr, whatever the message holds: it may quote stored names, values or
    error texts, so what splitting on whitespace leaves of their control characters is
    written out (shellflow.printable), never sent to the terminal."""
    from shellflow.printable import printable
    from shellflow.redact import mask_text

    # An error text may quote a URL with its password (a driver's, git's message).
    click.echo(f"flow: {printable(mask_text(' '.join(message.split())))}", err=True)
    return code


def _usage_message(exc: click.UsageError) -> str:
    where = exc.ctx.command_path if exc.ctx is not None else "flow"
    return f"{exc.format_message()} (see '{where} --help')"


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _unreadable(args: list[str]) -> str | None:
    """Why an argument cannot be taken as text: bytes that are not UTF-8 (Python hands them
    over as lone surrogates, which no database, message or terminal takes) or a NUL. The
    line names the option the argument belongs to, or its position, and the first bad byte."""
    for number, arg in enumerate(args):
        option, _, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if not option:
            before = args[number - 1] if number else ""
            option = before if before.startswith("-") and before != "--" else ""
        what = option or f"argument {number + 1}"
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            from shellflow.values import ValueRefused, decode_text

            try:
                raw = os.fsencode(value)
            except UnicodeEncodeError:  # main([...]) called with a surrogate no argv holds
                raw = value.encode("utf-8", "surrogatepass")
            try:
                decode_text(raw, what)
            except ValueRefused as refused:
                return str(refused)
            return f"{what}: not UTF-8 text"
        if "\0" in arg:
            return f"{what}: holds a NUL character"
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected failure becomes one line on stderr and its exit code.

    ``--debug`` anywhere on the command line lets unexpected errors (and the expected
    ``ShellflowError`` ones) raise with their traceback instead.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    _apps.clear()  # a refusal before the command's context exists has no database to go to
    code: Any = 0
    unreadable = _unreadable(args)
    if unreadable:
        from shellflow.errors import ExitCode

        sys.exit(_fail(unreadable, ExitCode.USAGE))
    try:
        code = cli.main(args=args, prog_name="flow", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        code = _interrupted()
    except click.UsageError as exc:
        code = _fail(_usage_message(exc), exc.exit_code)
    except click.ClickException as exc:
        code = _fail(exc.format_message(), exc.exit_code)
    except KeyboardInterrupt:
        code = _interrupted()
    except Exception as exc:
        from shellflow.commands.output import ReaderGone
        from shellflow.errors import ShellflowError

        _record_refusal(exc)
        if isinstance(exc, ReaderGone):
            # ``flow ls | head -1``: end quietly and successfully, like other shell tools.
            _silence_stdout()
            code = 0
        elif debug:
            raise
        elif isinstance(exc, ShellflowError):
            code = _fail(exc.message, exc.exit_code)
        else:
            code = _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", 1)
    sys.exit(code if isinstance(code, int) else 0)
