"""``flow add | ls | update | delete KIND``: manage the network's objects.

Thin by design: collect the options, ask for authorisation, hand the values to the store
(writes) or the light listing (reads), print.

Each verb's group builds the command of a kind only when that kind is asked for
(:class:`KindGroup`, with the builders of :mod:`shellflow.commands.kindcmds`), and ``ls
calls`` / ``ls call`` live in their own module: reading and building every kind's options
at start-up cost ``flow ls calls`` more than its query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def _build(maker: str, *args: Any) -> click.Command:
    from shellflow.commands import kindcmds

    command: click.Command = getattr(kindcmds, maker)(*args)
    return command


class KindGroup(click.Group):
    """A verb's group whose commands, one per kind, are built when first asked for.

    ``fixed`` names commands that are not kinds, as (module, attribute), imported on use.
    ``plurals``: ``ls`` also answers to each kind's plural (``flow ls queues``), hidden.
    ``skip``: kinds this verb does not apply to.
    """

    def __init__(
        self, *args: Any, build: Callable[[str, bool], click.Command],
        fixed: dict[str, tuple[str, str]] | None = None, plurals: bool = False,
        skip: tuple[str, ...] = (), **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.build = build
        self.fixed = fixed or {}
        self.plurals = plurals
        self.skip = skip

    def _kinds(self) -> dict[str, tuple[str, bool]]:
        """Command name -> (kind, hidden)."""
        from shellflow.commands.kinds import KIND_OPTIONS, PLURALS

        kinds = [kind for kind in KIND_OPTIONS if kind not in self.skip]
        names = {kind: (kind, False) for kind in kinds}
        if self.plurals:
            names |= {PLURALS[kind]: (kind, True) for kind in kinds}
        return names

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.fixed, *self._kinds()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            command: click.Command | None = None
            if cmd_name in self.fixed:
                module, attribute = self.fixed[cmd_name]
                command = getattr(__import__(module, fromlist=[attribute]), attribute)
            elif cmd_name in (kinds := self._kinds()):
                command = self.build(*kinds[cmd_name])
            if command is None:
                return None
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=KindGroup, build=lambda kind, _: _build("make_add", kind))
def add() -> None:
    """Add an object to the database."""


@click.group(cls=KindGroup, build=lambda kind, _: _build("make_update", kind), skip=("privilege",))
def update() -> None:
    """Update a database object."""


@click.group(cls=KindGroup, build=lambda kind, _: _build("make_delete", kind))
def delete() -> None:
    """Delete an object from the database."""


_HISTORY = {"calls": ("shellflow.commands.calls", "ls_calls"),
            "call": ("shellflow.commands.calls", "ls_call"),
            "audit": ("shellflow.commands.audit", "ls_audit"),
            "metrics": ("shellflow.commands.metrics", "ls_metrics")}  # fmt: skip


@click.group(
    cls=KindGroup,
    build=lambda kind, hidden: _build("make_ls", kind, hidden),
    fixed=_HISTORY,
    plurals=True,
)
def ls() -> None:
    """List database objects and their relations."""


@ls.command("rights")
def ls_rights() -> None:
    """List every right a privilege can grant."""
    from shellflow.model.rights import RIGHTS

    for right in RIGHTS:
        click.echo(right)
