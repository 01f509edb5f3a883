"""Create the network's objects from Python through the same store ``flow add`` uses.

Every write goes through :class:`shellflow.model.store.Store` inside one transaction, so
names, lengths, references and cron lines are checked exactly as on the command line, and
through :func:`shellflow.model.access.authorize` with the rights ``flow add`` asks for.

Creation is idempotent: an object that already exists with the fields asked for is left as
it is, so a script that builds a network can run again. An object that exists with other
values is a :class:`~shellflow.errors.Conflict` naming them: the API never changes an
existing object behind its owner's back (``flow update`` or ``flow compose`` do that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shellflow.config import Settings
from shellflow.errors import Conflict, UsageError

# What each kind accepts from Python (the columns ``flow add KIND`` sets), by store key.
FIELDS: dict[str, tuple[str, ...]] = {
    "queue": ("name", "qtype", "durable", "message_ttl", "expires", "max_length", "network"),
    "processor": (
        "name", "module", "gitrepo", "branch", "commit", "gittag", "hostname", "concurrency",
        "workers", "retries", "retrydelay", "timelimit", "requested_status", "beat", "deploy",
        "password", "requirements", "modulepath", "endpoint", "hasapi", "description",
        "min_workers", "max_workers",
    ),
    "socket": ("name", "queue", "processor", "task", "interval", "cron", "wait", "description"),
    "plug": ("name", "queue", "source", "target", "argument", "type", "description"),
}  # fmt: skip
REQUIRED: dict[str, tuple[str, ...]] = {
    "queue": ("name",),
    "processor": ("name", "module", "gitrepo"),
    "socket": ("name", "queue", "processor", "task"),
    "plug": ("name", "queue", "source", "target"),
}
# Spellings of the spec's Python API, mapped onto the store's keys.
ALIASES = {"type": "qtype", "tag": "gittag", "retry_delay": "retrydelay", "time_limit": "timelimit"}


def authorized(right: str, target: str | None, settings: Settings) -> str:
    """Check ``right`` for whoever runs this script, as the CLI does (exit 5 and the same one
    line when refused, appended to the audit trail of ``settings.db``); the acting user's
    name. Who acts is resolved against ``settings`` (the API's database: its token or
    session, else its owner), not the environment's, which may name another database. One
    set look-up: the principal carries its rights (``shellflow.model.access``)."""
    from shellflow.model import access, audit

    principal = access.current_principal(settings)
    audit.authorize(settings.db, principal, right, target)
    return principal.name


def owner_and_authorize(kind: str, settings: Settings, name: str) -> str:
    """Check the ``ADD_<KIND>`` right on ``name`` as ``flow add`` does; the acting user."""
    from shellflow.model.rights import RIGHTS

    right = f"ADD_{kind.upper()}"
    return authorized(right if right in RIGHTS else "CREATE", name, settings)


def fields_of(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The given values under the store's keys; unknown keys are a usage error."""
    allowed = FIELDS[kind]
    found: dict[str, Any] = {}
    for key, value in values.items():
        key = ALIASES.get(key, key) if not (kind == "plug" and key == "type") else key
        if key not in allowed:
            raise UsageError(f"a {kind} has no field {key!r} (known: {', '.join(allowed)})")
        if value is not None:
            found[key] = value
    return found


def _stored(kind: str, obj: Any, key: str) -> Any:
    """An existing object's value for ``key``, as the API would give it."""
    if kind == "socket" and key == "task":
        return obj.task.function
    if key in ("processor", "queue", "source", "target", "network"):
        related = getattr(obj, key)
        return related.name if related is not None else None
    if kind == "plug" and key == "argument":
        return obj.argument.name if obj.argument is not None else None
    return getattr(obj, key)


def differences(kind: str, obj: Any, values: Mapping[str, Any]) -> list[str]:
    found = []
    for key, wanted in values.items():
        if key in ("name", "password"):  # the password is stored hashed: not compared
            continue
        have = _stored(kind, obj, key)
        if have != wanted:
            found.append(f"{key}={have!r} (asked for {wanted!r})")
    return found


def ensure(settings: Settings, kind: str, values: Mapping[str, Any]) -> bool:
    """Create the object unless it exists with these values; True when it was created."""
    from shellflow.model.checks import check_name
    from shellflow.model.db import session_scope
    from shellflow.model.repos import split_ini
    from shellflow.model.store import Store

    values = fields_of(kind, values)
    check_name(kind, values.get("name"))  # the one name rule, before any database is opened
    missing = [key for key in REQUIRED[kind] if key not in values]
    owner = owner_and_authorize(kind, settings, values["name"])
    with session_scope(settings.db) as session:
        store = Store(session, owner, split_ini(settings.repos_allow))
        existing = store.find(kind, values["name"])
        if existing is not None:
            changed = differences(kind, existing, values)
            if changed:
                raise Conflict(
                    f"{kind} {values['name']!r} already exists with " + ", ".join(changed)
                    + f"; change it with 'flow update {kind}'"
                )  # fmt: skip
            return False
        if missing:
            raise UsageError(f"{kind} {values['name']!r} does not exist; to create it give "
                             + ", ".join(missing))  # fmt: skip
        if kind == "processor" and values.get("commit"):
            _check_commit(settings, values["gitrepo"], values["commit"])
        store.add(kind, values)
    _forget_routes()
    return True


def _check_commit(settings: Settings, gitrepo: str, commit: str) -> None:
    """A pinned commit must exist in its allowed repository, as ``flow add`` checks."""
    from shellflow.engine.fleet.trusted import find_commit
    from shellflow.errors import NotFound
    from shellflow.model.repos import shown

    if find_commit(settings, gitrepo, commit) is None:
        raise NotFound(f"commit in repository {shown(gitrepo)}", commit)


def ensure_queue(settings: Settings, queue: Any) -> str:
    """A queue given as a name, a dict of its fields (spec: ``queue={"name": ...}``) or an
    object with a ``name``; created when missing, returned by name."""
    if isinstance(queue, str):
        values: dict[str, Any] = {"name": queue}
    elif isinstance(queue, Mapping):
        values = dict(queue)
        if not values.get("name"):
            raise UsageError("a queue needs a name: queue={'name': ...}")
    elif isinstance(getattr(queue, "name", None), str):
        return str(queue.name)
    else:
        raise UsageError(f"a queue is a name or a dict of its fields, not {queue!r}")
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    with session_scope(settings.db) as session:
        found = Store(session).find("queue", values["name"]) is not None
    if found and len(values) == 1:
        return str(values["name"])  # named only: use it as it is, do not check its fields
    ensure(settings, "queue", values)
    return str(values["name"])


def ensure_arguments(settings: Settings, socket: str, names: Sequence[tuple[str, int]]) -> None:
    """Give the socket's task these named arguments (name, ``inspect`` kind) in this order."""
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    owner = owner_and_authorize("argument", settings, f"socket {socket}")
    with session_scope(settings.db) as session:
        store = Store(session, owner)
        have = {a.name for a in store.get("socket", socket).task.arguments}
        for position, (name, kind) in enumerate(names):
            if name not in have:
                store.add(
                    "argument", {"name": name, "socket": socket, "position": position, "kind": kind}
                )


def row(settings: Settings, kind: str, name: str) -> dict[str, Any]:
    """The object as ``flow ls KIND -n NAME --json`` shows it (with the right that needs)."""
    from shellflow.model.listing import get_object, reader
    from shellflow.model.rights import RIGHTS

    right = f"READ_{kind.upper()}"
    authorized(right if right in RIGHTS else "READ", name, settings)
    with reader(settings.db) as conn:
        return get_object(conn, kind, name)


def _forget_routes() -> None:
    """Routes cached by this process may have changed (a socket moved to a new queue)."""
    from shellflow.engine.calls.sender import forget_routes

    forget_routes()
