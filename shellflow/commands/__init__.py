"""The ``flow`` command line.

Importing this package loads click and shellflow's light modules only: SQLAlchemy, Celery
and Textual are imported inside the commands that use them, so ``flow --help`` and shell
completion start in a few tens of milliseconds.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from shellflow import __version__
from shellflow.commands.config_cmd import config, configure_interactively
from shellflow.commands.context import AppContext
from shellflow.commands.db import db
from shellflow.commands.objects import add, delete, ls, update
from shellflow.config import load_settings
from shellflow.errors import ExitCode, ShellflowError


@click.group(
    context_settings={"help_option_names": ["--help"], "max_content_width": 100},
    invoke_without_command=True,
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug output")
@click.option("-d", "--db", metavar="URL", help="Model database URL [env SHELLFLOW_DB]")
@click.option("--backend", metavar="URL", help="Task result backend URL [env SHELLFLOW_BACKEND]")
@click.option("--broker", metavar="URL", help="Message broker URL [env SHELLFLOW_BROKER]")
@click.option("--pubsub", metavar="URL", help="Live channel URL [env SHELLFLOW_PUBSUB]")
@click.option("-i", "--ini", metavar="FILE", help="Configuration file [env SHELLFLOW_INI]")
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
    flags = {"db": db, "backend": backend, "broker": broker, "pubsub": pubsub}
    settings = load_settings(flags, ini=ini, debug=debug)
    ctx.obj = AppContext(settings=settings)
    if configure:
        configure_interactively(ctx.obj)
        ctx.exit(0)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _group in (add, config, db, delete, ls, update):
    cli.add_command(_group)


def _fail(message: str, code: int) -> int:
    click.echo(f"flow: {message}", err=True)
    return code


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected failure becomes one line on stderr and its exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    code: Any = 0
    try:
        code = cli.main(args=args, prog_name="flow", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        code = _fail("interrupted", ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ShellflowError as exc:
        if debug:
            raise
        code = _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        code = _fail("interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (``flow ls | head -1``): end quietly, like other shell tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception as exc:
        if debug:
            raise
        code = _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", 1)
    sys.exit(code if isinstance(code, int) else 0)
