"""``flow config show`` and the interactive ``flow --config``."""

from __future__ import annotations

from pathlib import Path

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, print_rows, stdin_is_tty
from shellflow.config import DESCRIPTIONS, KEYS, defaults, write_ini
from shellflow.redact import mask_url


def _ask(key: str, current: str) -> str:
    """Prompt with the current value as default, shown with its password masked."""
    shown = mask_url(current)
    answer: str = click.prompt(
        f"{DESCRIPTIONS[key]} [{shown}]", default=current, show_default=False, err=True
    )
    return answer.strip() or current


def configure_interactively(app: AppContext) -> None:
    """Ask for each setting (on a terminal only) and write the ini file (mode 0600).

    Without a terminal nothing is asked: the effective values (flags and environment
    included) are written as they are, which makes ``flow --db URL --config`` scriptable.
    On a terminal, settings still at their default follow a newly chosen home folder.
    """
    app.authorize("UPDATE", "configuration")
    settings = app.settings
    values = {key: settings[key] for key in KEYS}
    if stdin_is_tty():
        values["home"] = _ask("home", values["home"])
        moved = defaults(Path(values["home"]).expanduser())
        for key in KEYS[1:]:
            if settings.values[key].source == "default":
                values[key] = moved[key]
            values[key] = _ask(key, values[key])
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
    app.authorize("READ", "configuration")
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
    app.authorize("READ", "configuration")
    click.echo(str(app.settings.ini_path))
