"""``flow config show`` and the interactive ``flow --config``."""

from __future__ import annotations

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, print_rows, stdin_is_tty
from shellflow.config import DESCRIPTIONS, KEYS, mask_url, write_ini


def configure_interactively(app: AppContext) -> None:
    """Ask for each URL (on a terminal only) and write the ini file.

    Without a terminal nothing is asked: the effective values (flags and environment
    included) are written as they are, which makes ``flow --db URL --config`` scriptable.
    """
    settings = app.settings
    values = {key: settings[key] for key in KEYS}
    if stdin_is_tty():
        for key in KEYS:
            values[key] = click.prompt(DESCRIPTIONS[key], default=values[key], err=True)
    write_ini(settings.ini_path, values)
    info(f"Configuration file written to {settings.ini_path}")


@click.group()
def config() -> None:
    """Show or change the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)")
@pass_app
def config_show(app: AppContext, as_json: bool) -> None:
    """Print each effective setting, where it came from, passwords masked."""
    rows = [{"setting": k, "value": v, "source": s} for k, v, s in app.settings.rows()]
    rows.append(
        {
            "setting": "ini",
            "value": str(app.settings.ini_path),
            "source": app.settings.extras["ini"],
        }
    )
    print_rows(["setting", "value", "source"], rows, as_json)


@config.command("path")
@pass_app
def config_path(app: AppContext) -> None:
    """Print the configuration file's path."""
    click.echo(mask_url(str(app.settings.ini_path)))
