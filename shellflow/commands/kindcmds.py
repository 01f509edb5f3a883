"""The commands of ``flow add | ls | update | delete KIND``, one kind at a time.

Built on demand by the groups of :mod:`shellflow.commands.objects`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from shellflow.commands.context import AppContext, pass_app
from shellflow.commands.kinds import right_for
from shellflow.commands.params import TEXT

if TYPE_CHECKING:
    from shellflow.commands.kinds import Opt


def _apply_options(
    command: Callable[..., Any], options: list[Opt], for_update: bool, kind: str = ""
) -> Callable[..., Any]:
    from shellflow.commands.complete import names_of

    for option in reversed(options):
        kwargs = dict(option.kwargs)
        if for_update:
            kwargs.pop("default", None)
            kwargs.setdefault("default", None)
        if "type" not in kwargs and (option.required or "shell_complete" in kwargs):
            kwargs["type"] = TEXT  # a required text or a name may be left out, never empty
        if kind and option.key == "name" and not isinstance(kwargs.get("type"), click.Choice):
            kwargs["shell_complete"] = names_of(kind)  # an existing object's name
        help_text = option.help + (" [required]" if option.required and not for_update else "")
        command = click.option(*option.decls, option.key, help=help_text, **kwargs)(command)
    return command


def _flag_names(option: Opt) -> str:
    return "/".join(d for d in option.decls if d.startswith("-"))


def collect(options: list[Opt], values: dict[str, Any], adding: bool) -> dict[str, Any]:
    """Fill missing required values: prompt on a terminal, otherwise a usage error (exit 2)."""
    from shellflow.commands.output import stdin_is_tty

    values = dict(values)
    _password(values)
    if not adding:
        return values
    for option in options:
        if not option.required or values.get(option.key) is not None:
            continue
        if not stdin_is_tty():
            raise click.UsageError(f"Missing option '{_flag_names(option)}'.")
        label = option.key.replace("_", " ").capitalize()
        values[option.key] = click.prompt(
            label, hide_input=option.secret, confirmation_prompt=option.secret, err=True
        )
    return values


def _password(values: dict[str, Any]) -> None:
    """Take the password from stdin or a hidden prompt (an argument is kept, and warned of
    by :func:`_warn_given_as_argument`)."""
    from shellflow.commands.kinds import ASK
    from shellflow.commands.output import stdin_is_tty

    given = values.get("password")
    if values.pop("password_stdin", None):
        if given is not None:
            raise click.UsageError("give the password by --password or --password-stdin, not both")
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: stdin held no password")
        try:
            line.encode("utf-8")  # stdin's bytes that are not UTF-8 arrive as lone surrogates
        except UnicodeEncodeError:
            raise click.UsageError("--password-stdin: the password is not UTF-8 text") from None
        values["password"] = line
    elif given == ASK:
        if not stdin_is_tty():
            raise click.UsageError(
                "--password without a value asks on a terminal; use --password-stdin"
            )
        values["password"] = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )


def _given_as_argument(values: dict[str, Any]) -> bool:
    from shellflow.commands.kinds import ASK

    return values.get("password") not in (None, ASK) and not values.get("password_stdin")


def _warn_given_as_argument() -> None:
    """Said once the command has done its work, so a refused command keeps its one line."""
    click.echo(
        "flow: warning: a password given on the command line is visible to other users "
        "(ps) and kept in shell history; use --password-stdin or --password alone",
        err=True,
    )


def _identity(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """Options that pick the object (beyond its name) and are not changes."""
    keys = {"argument": ("socket",), "privilege": ("user", "role", "processor")}.get(kind, ())
    return {k: values.pop(k, None) for k in keys}


def make_add(kind: str) -> click.Command:
    from shellflow.commands.kinds import KIND_OPTIONS

    options = [o for o in KIND_OPTIONS[kind] if not o.update_only]

    @pass_app
    def command(app: AppContext, as_json: bool, **values: Any) -> None:
        from shellflow.commands.output import info, print_object

        app.authorize(right_for("ADD", kind), values.get("name") or f"a new {kind}")
        warn = _given_as_argument(values)
        values = collect(options, values, adding=True)
        if kind == "processor" and values.get("commit"):
            _check_commit(app, values["gitrepo"], values["commit"])
        with app.store() as store:
            added = store.add(kind, values)
            task = added.task.name if kind == "argument" else None
        _notes(store)
        if kind == "privilege":  # granted to a user or role, or a user's revocation cleared
            info(f"Privilege {values['name']} {store.granted}")
        else:
            info(f"Added {kind} {values['name']!r}")
        if warn:
            _warn_given_as_argument()
        if as_json:
            print_object(_added_row(app, kind, values, task), as_json=True)

    command = _apply_options(command, options, for_update=False)
    command = click.option("--json", "as_json", is_flag=True, help="Print the new object as JSON")(
        command
    )
    return click.command(kind, help=f"Add a {kind} to the database.")(command)


def _added_row(
    app: AppContext, kind: str, values: dict[str, Any], task: str | None
) -> dict[str, Any]:
    """The object just added, as ``flow ls`` shows it.

    Argument and privilege names repeat (per task, per holder), so their row is picked by
    the task or the holder rather than by name alone.
    """
    from shellflow.model.listing import get_object, list_objects

    with app.reader() as conn:
        if kind == "argument":
            rows = list_objects(conn, kind, values["name"])
            return next(r for r in rows if r["task"] == task)
        if kind == "privilege":
            rows = list_objects(conn, kind, values["name"])
            holder = (values.get("user"), values.get("role"), values.get("processor"))
            return next(r for r in rows if (r["user"], r["role"], r["processor"]) == holder)
        return get_object(conn, kind, values["name"])


def make_update(kind: str) -> click.Command:
    from shellflow.commands.kinds import KIND_OPTIONS

    options = [o for o in KIND_OPTIONS[kind] if not o.add_only]

    @pass_app
    def command(app: AppContext, rename: str | None, force: bool = False, **values: Any) -> None:
        from shellflow.commands.output import info

        app.authorize(right_for("UPDATE", kind), values.get("name"))
        name = values.pop("name")
        warn = _given_as_argument(values)
        values = collect(options, values, adding=False)
        values = {k: v for k, v in values.items() if v not in (None, ())}
        if rename:
            values["rename"] = rename
        if kind == "argument" and not values.get("socket"):
            raise click.UsageError("Missing option '-s/--socket'.")
        changes = [k for k in values if k != "socket"]
        if not changes:
            raise click.UsageError("nothing to change: give at least one option to update")
        if kind == "processor" and values.get("commit"):
            _check_commit(app, values.get("gitrepo") or _gitrepo_of(app, name), values["commit"])
        with app.store() as store:
            store.update(kind, name, values, force=force)
            _check(app, store)
        info(f"Updated {kind} {name!r}: {', '.join(changes)}")
        _notes(store)
        if warn:
            _warn_given_as_argument()
        _finish(app, store)

    command = _apply_options(command, options, for_update=True, kind=kind)
    command = click.option("--rename", type=TEXT, help="New name")(command)
    command = _force_option(kind, command)
    # -n identifies the object to change, so it stays required.
    return click.command(kind, help=f"Update a {kind} in the database.")(_require_name(command))


def _check_commit(app: AppContext, gitrepo: str, commit: str) -> None:
    """A pinned commit must exist in its (allowed) repository: fetched to be sure, so a typo
    is refused now (exit 3) rather than by every agent later."""
    from shellflow.engine.fleet.trusted import find_commit
    from shellflow.errors import NotFound
    from shellflow.model.repos import shown

    if find_commit(app.settings, gitrepo, commit) is None:
        raise NotFound(f"commit in repository {shown(gitrepo)}", commit)


def _gitrepo_of(app: AppContext, name: str) -> str:
    from shellflow.model.listing import get_object

    with app.reader() as conn:
        return str(get_object(conn, "processor", name)["gitrepo"])


def _require_name(command: Callable[..., Any]) -> Callable[..., Any]:
    params = getattr(command, "__click_params__", [])
    for param in params:
        if param.name == "name":
            param.required = True
    return command


def make_delete(kind: str) -> click.Command:
    from shellflow.commands.complete import names_of
    from shellflow.commands.kinds import KIND_OPTIONS

    keys = ("user", "role", "processor") if kind == "privilege" else ("socket", "user", "role")
    identity = [o for o in KIND_OPTIONS[kind] if o.key in keys]
    name_opt = next(o for o in KIND_OPTIONS[kind] if o.key == "name")
    choice = isinstance(name_opt.kwargs.get("type"), click.Choice)

    @pass_app
    def command(
        app: AppContext, name: str, cascade: bool, force: bool = False, **extra: Any
    ) -> None:
        from shellflow.commands.output import info

        app.authorize(right_for("DELETE", kind), name)
        if kind == "argument" and not extra.get("socket"):
            raise click.UsageError("Missing option '-s/--socket'.")
        with app.store() as store:
            deleted = store.delete(kind, name, cascade=cascade, force=force, **extra)
            _check(app, store)
        for item in deleted:
            info(f"Deleted {item}")
        _notes(store)
        _finish(app, store)

    command = _apply_options(command, [*identity], for_update=True)
    command = click.option(
        "--cascade", is_flag=True, help="Also delete the objects that depend on it"
    )(command)
    command = _force_option(kind, command)
    command = click.option(
        *name_opt.decls,
        "name",
        required=True,
        help=name_opt.help,
        shell_complete=None if choice else names_of(kind),
        **{k: v for k, v in name_opt.kwargs.items() if k in ("type", "metavar")},
    )(command)
    return click.command(kind, help=f"Delete a {kind} from the database.")(command)


FORCE_HELP = "Revoke the calls pending or running that the change would strand"


FORCE_KINDS = ("queue", "processor", "socket", "plug")  # the kinds calls run on


def _force_option(kind: str, command: Callable[..., Any]) -> Callable[..., Any]:
    if kind not in FORCE_KINDS:
        return command
    return click.option("--force", is_flag=True, help=FORCE_HELP)(command)


def _check(app: AppContext, store: Any) -> None:
    """Refuse, before the commit, a change that strands calls waiting in the broker."""
    from shellflow.services.network import check

    check(app.settings, store.revocation)


def _notes(store: Any) -> None:
    """What the store asks to tell the user (say, a user who got no PostgreSQL role)."""
    from shellflow.commands.output import info

    for note in store.notes:
        info("Note: " + note)


def _finish(app: AppContext, store: Any) -> None:
    """Revoke what a forced change stranded, once it is committed (``services.network``)."""
    from shellflow.commands.output import info
    from shellflow.services.network import finish

    said = finish(app.settings, store.revocation)
    if said:
        info(said[0].upper() + said[1:])


def _more(conn: Any, kind: str, rows: list[Any], columns: list[str]) -> list[Any]:
    """Rows with what a kind adds beyond its view: a node's load, free CPUs, heartbeat age,
    processors and workers (``shellflow.model.nodes``); ``columns`` grows with them."""
    if kind != "node":
        return rows
    from shellflow.model.nodes import COLUMNS, with_fleet

    columns += COLUMNS
    return with_fleet(conn, rows)


def make_ls(kind: str, hidden: bool = False) -> click.Command:
    from shellflow.commands.complete import names_of
    from shellflow.commands.kinds import PLURALS

    @pass_app
    def command(app: AppContext, name: str | None, as_json: bool) -> None:
        from shellflow.commands.output import print_object, print_rows
        from shellflow.model.listing import get_object, list_objects
        from shellflow.model.views import VIEWS

        app.authorize(right_for("LS", kind), name or PLURALS[kind])
        view = VIEWS[kind]
        columns = [key for key, _, _ in view.columns]
        with app.reader() as conn:
            if name is not None and view.unique:
                found = [get_object(conn, kind, name)]
                print_object(_more(conn, kind, found, columns)[0], as_json)
                return
            rows = list_objects(conn, kind, name)
            if name is not None and not rows:
                from shellflow.errors import NotFound
                from shellflow.model.listing import names

                raise NotFound(kind, name, names(conn, kind))
            rows = _more(conn, kind, rows, columns)
        print_rows(columns, rows, as_json)

    command = click.option(
        "--json", "as_json", is_flag=True, help="NDJSON (one JSON object a line)"
    )(command)
    command = click.option(
        "-n",
        "--name",
        type=TEXT,
        help=f"Show one {kind} with its relations",
        shell_complete=names_of(kind),
    )(command)
    return click.command(
        PLURALS[kind] if hidden else kind, help=f"List {PLURALS[kind]}.", hidden=hidden
    )(command)
