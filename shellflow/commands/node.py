"""``flow node cordon|uncordon|drain -n NAME``: where the placement may put processors.

The commands write the node's state; the placement (run twice a second by one agent) acts
on it within a second or so: see :mod:`shellflow.services.nodes` and docs/engine.md, Nodes.
"""

from __future__ import annotations

import click

from shellflow.commands.complete import names_of
from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info
from shellflow.commands.params import TEXT

HELP = {
    "cordon": "Place no new processor on a node (what runs there stays).",
    "uncordon": "Let the placement use a cordoned or drained node again.",
    "drain": "Cordon a node and move its processors to other live nodes.",
}


@click.group()
def node() -> None:
    """Cordon, uncordon or drain nodes."""


def _make(verb: str) -> click.Command:
    @click.option("-n", "--name", required=True, type=TEXT, help="Node name",
                  shell_complete=names_of("node"))  # fmt: skip
    @pass_app
    def command(app: AppContext, name: str) -> None:
        from shellflow.services.nodes import set_state

        previous, state = set_state(app.settings, app.principal, name, verb)
        if previous == state:
            info(f"Node {name!r} is {state} already")
        else:
            info(f"Node {name!r}: {state} (was {previous})")
        if verb == "drain":
            info("Its processors move to other live nodes within seconds (flow ls nodes)")

    return click.command(verb, help=HELP[verb])(command)


for _verb in HELP:
    node.add_command(_make(_verb))
