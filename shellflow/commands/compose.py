"""``flow compose up|down|diff|export``: a network declared in a YAML file.

Thin: read the file, let :mod:`shellflow.model.compose` check it and work out the changes,
ask for each change's right (the same rights as ``flow add|update|delete``), apply them in
one transaction, print. The file format is described in ``flow compose --help`` and the
README's "Compose files" section.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.output import info, write_lines

if TYPE_CHECKING:
    from shellflow.model.compose import Change, Spec
    from shellflow.model.store import Store

_VERBS = {"add": "ADD", "change": "UPDATE", "remove": "DELETE"}
FILE = click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
FORCE = click.option("--force", is_flag=True, help="Revoke the calls pending or running that "
                     "a change or removal would strand (else refused, exit 4)")  # fmt: skip


def _finish(app: AppContext, store: Store) -> None:
    """Revoke what a forced change stranded, once it is committed."""
    from shellflow.services.network import finish

    said = finish(app.settings, store.revocation)
    if said:
        info(said[0].upper() + said[1:])


def _read(file: str) -> Spec:
    """The checked file ('-' reads stdin); an unreadable or invalid file is exit 2.

    Every problem of an invalid file is shown, one line each, the last as the error.
    """
    from shellflow.model.compose import ComposeError, load
    from shellflow.model.compose_load import MAX_BYTES, too_large

    try:  # never more than the bound, whatever the file (/dev/zero, a pipe that never ends)
        if file == "-":
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with Path(file).open("rb") as stream:
                data = stream.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ComposeError([too_large("<stdin>" if file == "-" else file)])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise click.BadParameter(f"cannot read {file!r}: {reason}", param_hint="FILE") from None
    try:
        if file == "-":
            return load(text, "<stdin>")
        return load(text, file, Path(file).resolve().parent)
    except ComposeError as exc:
        for problem in exc.problems[:-1]:
            info(f"flow: {problem}")
        raise ComposeError(exc.problems[-1:]) from None


def _authorizer(app: AppContext) -> Callable[[str, str, str], None]:
    from shellflow.commands.kinds import right_for

    def authorize(action: str, kind: str, name: str) -> None:
        app.authorize(right_for(_VERBS[action], kind), name)

    return authorize


def _report(changes: list[Change], deleted: list[str]) -> None:
    from shellflow.model.compose import summary

    for change in changes:
        info(change.describe())
    for item in deleted:
        if not any(f"{c.kind} {c.name}" == item for c in changes):
            info(f"- {item} (cascade)")
    info(summary(changes))


@click.group()
def compose() -> None:
    """Apply, compare or export network files (YAML).

    \b
    A compose file declares queues, processors, sockets and plugs by name,
    with the fields of the matching 'flow add' options:
      version: 1
      queues:
        pyfi.queue1: {type: direct}
      processors:
        proc1: {gitrepo: URL, module: pyfi.processors.sample, concurrency: 2}
      sockets:
        pyfi.processors.sample.do_this:
          {queue: pyfi.queue1, processor: proc1, task: do_this, interval: 60}
      plugs:
        p1: {source: SOCKET, target: SOCKET, queue: pyfi.queue1, argument: one}

    A declared object is described whole: a field left out takes its default.
    An invalid file is exit 2, with FILE:LINE; nothing is written unless all of
    it applies (one transaction).
    """


@compose.command("up")
@FILE
@click.option("--prune", is_flag=True, help="Also remove queues, processors, sockets and "
              "plugs the file does not declare")  # fmt: skip
@FORCE
@pass_app
def up(app: AppContext, file: str, prune: bool, force: bool) -> None:
    """Make the network match FILE.

    Adds and changes what FILE declares; a second run changes nothing and says so.
    """
    from shellflow.model.compose import apply, plan
    from shellflow.services.network import check

    spec = _read(file)
    with app.store() as store:
        changes = plan(store, spec, prune=prune)
        deleted = apply(store, changes, _authorizer(app), force=force)
        check(app.settings, store.revocation)
    _report(changes, deleted)
    _finish(app, store)


@compose.command("down")
@FILE
@click.option("--cascade", is_flag=True, help="Also delete objects the file does not declare "
              "that depend on declared ones")  # fmt: skip
@FORCE
@pass_app
def down(app: AppContext, file: str, cascade: bool, force: bool) -> None:
    """Remove the objects FILE declares, and nothing else.

    An object that others not in FILE depend on is refused (exit 4) unless --cascade.
    """
    from shellflow.commands.kinds import right_for
    from shellflow.model.compose import apply, plan_down
    from shellflow.services.network import check

    spec = _read(file)
    for declared in spec.objects:  # asking to delete is refused whether or not it exists
        app.authorize(right_for("DELETE", declared.kind), declared.name)
    with app.store() as store:
        changes = plan_down(store, spec)
        deleted = apply(store, changes, _authorizer(app), cascade=cascade, force=force)
        check(app.settings, store.revocation)
    _report(changes, deleted)
    _finish(app, store)


@compose.command("diff")
@FILE
@click.option("--prune", is_flag=True, help="Include what 'up --prune' would remove")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are changes (like git diff)")
@pass_app
def diff(app: AppContext, file: str, prune: bool, exit_code: bool) -> None:
    """Show what 'up' would change.

    One line per object: + added (with its fields), ~ changed (field: old -> new),
    - removed. Exits 0 whether or not there are changes; with --exit-code, 1 when there
    are (like git diff --exit-code).
    """
    from shellflow.commands.kinds import PLURALS, right_for
    from shellflow.model.compose import KINDS, plan, summary

    spec = _read(file)
    for kind in KINDS:
        app.authorize(right_for("LS", kind), f"{PLURALS[kind]} of {file}")
    with app.store() as store:
        changes = plan(store, spec, prune=prune)
        store.session.rollback()  # a look, never a write
    write_lines(change.describe() for change in changes)
    info(summary(changes))
    if exit_code and changes:
        raise click.exceptions.Exit(1)


@compose.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout")  # fmt: skip
@pass_app
def export(app: AppContext, output: str | None) -> None:
    """Write the stored network as a compose file.

    Queues, processors, sockets and plugs, by name, fields at their default left out:
    'up' of the result on an empty database makes the same network. Passwords are not
    exported: a processor's password is not, and the password inside its git URL is written
    as ${SHELLFLOW_SECRET_<PROCESSOR>}, which 'up' fills from that environment variable
    (refusing the file while it is not set).
    """
    from shellflow.commands.kinds import PLURALS, right_for
    from shellflow.model.compose import KINDS
    from shellflow.model.compose import export as export_network

    for kind in KINDS:
        app.authorize(right_for("LS", kind), PLURALS[kind])
    with app.store() as store:
        text = export_network(store)
    if output is None or output == "-":
        write_lines(text.splitlines())
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.BadParameter(f"cannot write {output!r}: {reason}", param_hint="-o") from None
    info(f"Wrote the network to {output}")
