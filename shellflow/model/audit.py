"""The audit trail: who changed what, who was refused, who logged in, appended and never changed.

One row per event in the ``audit`` table (:class:`shellflow.model.audit_table.AuditRow`):
``at`` (UTC), ``who`` (the principal's name), ``action`` (see :data:`ACTIONS`), ``kind``
and ``name`` of the object, ``before`` and ``after`` (the object as JSON text; None for an
addition, a deletion) and ``origin`` (the front and the process: ``cli host/pid``).

:func:`append` writes a row through either connection shellflow has: a SQLAlchemy session
(the object store appends in the transaction of the change, so a change and its row are
committed or rolled back together) or the light driver-level connection of
:mod:`shellflow.model.listing` (a refusal and a login, which change nothing else, append
in a transaction of their own). This module imports no SQLAlchemy at the top: ``flow ls
audit`` and the refusal written by the command line's entry point stay light.

Secrets never enter a row: :func:`clean` drops password hashes, token digests and keys
(a stored ``"password": "***"`` says one was set) and masks the password of every URL in
text (``shellflow.redact``), e.g. a git repository ``https://user:TOKEN@host/repo``.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shellflow.errors import PermissionDenied
from shellflow.redact import mask_text

if TYPE_CHECKING:
    from shellflow.model.access import Principal
    from shellflow.model.listing import Reader

# What a row says happened. ``force``: a change made with --force over calls it strands
# (its own row, next to the change's); ``refused``: a right was lacking, nothing changed.
ACTIONS = (
    "add", "update", "delete", "grant", "revoke", "start", "stop", "pause", "resume",
    "remove", "restart", "force", "refused", "login", "login_failed", "logout",
)  # fmt: skip

# Keys whose values are secrets (kept as "***" when set) or noise in a before/after. A
# stored hash is shown under the name of what it hashes: ``"password": "***"``.
SECRET_KEYS = frozenset({"password", "token", "secret", "key", "signing_key"})
HASH_KEYS = {"password_hash": "password", "hash": "password", "token_hash": "token"}
NOISE_KEYS = frozenset({"id", "created", "lastupdated", "password_id"})

# The front acting in this process: the Python API unless a front says otherwise.
_front = ["api"]


def set_front(front: str) -> None:
    """Name the front of this process (``cli``, ``tui``, ``agent``, ``api``) for its rows."""
    _front[0] = front


def origin() -> str:
    """Where a row comes from: the front, the host and the process id."""
    return f"{_front[0]} {socket.gethostname()}/{os.getpid()}"


def clean(value: Any) -> Any:
    """``value`` made fit for the trail: secrets replaced, URL passwords masked, times as
    ISO text, so the JSON holds nothing a reader of the trail may not see."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in NOISE_KEYS:
                continue
            if key in HASH_KEYS:
                out[HASH_KEYS[key]] = None if item is None else "***"
            elif str(key).lower() in SECRET_KEYS:
                out[key] = None if item is None else "***"
            else:
                out[key] = clean(item)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = [clean(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_text(str(value))


def snapshot(obj: Any) -> dict[str, Any]:
    """An ORM object's columns (and, for holders of rights, the names they hold), cleaned.

    Foreign keys are shown by the referenced object's name where the object has one
    (``processor``, ``queue``...), not by a UUID no reader can place.
    """
    values: dict[str, Any] = {}
    for attr in obj.__mapper__.column_attrs:
        key = attr.key
        if key.endswith("_id") and key not in NOISE_KEYS:
            related = getattr(obj, key[:-3], None)
            if related is not None and hasattr(related, "name"):
                values[key[:-3]] = related.name
                continue
        values[key] = getattr(obj, key)
    for collection in ("roles", "privileges", "revoked"):
        items = getattr(obj, collection, None)
        if isinstance(items, list) and obj.__tablename__ in ("users", "role"):
            values[collection] = sorted(i.name for i in items)
    if getattr(obj, "password", None) is not None and obj.__tablename__ == "processor":
        values["password"] = "***"
    return dict(clean(values))


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(clean(value), sort_keys=True, default=str)


def append(
    target: Any, who: str | None, action: str, kind: str, name: str | None = None,
    before: Any = None, after: Any = None, *, where: str | None = None,
    at: datetime | None = None,
) -> None:  # fmt: skip
    """Append one row through ``target``: a SQLAlchemy ``Session`` (in its transaction) or
    a writable :class:`~shellflow.model.listing.Reader` (in its current transaction, or
    committed on its own). ``before``/``after`` are mappings (cleaned here) or None."""
    from shellflow.model.listing import Reader

    row: dict[str, Any] = {
        "at": at or datetime.now(UTC),
        "who": (who or "unknown")[:200],
        "action": action,
        "kind": kind[:40],
        "name": None if name is None else mask_text(name)[:400],
        "before": _json(before),
        "after": _json(after),
        "origin": (where or origin())[:200],
    }
    if isinstance(target, Reader):
        from shellflow.model.dialects import sql_time

        row["at"] = sql_time(target.dialect, row["at"])
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        target.execute(f"INSERT INTO audit ({columns}) VALUES ({marks})", list(row.values()))
        return
    from shellflow.model.audit_table import AuditRow

    target.add(AuditRow(**row))


def append_alone(db_url: str, who: str | None, action: str, kind: str, name: str | None = None,
                 before: Any = None, after: Any = None) -> None:  # fmt: skip
    """Append one row in a transaction of its own (a refusal, a login: nothing else is
    written with them, and a rollback elsewhere must not take the row away)."""
    from shellflow.model.listing import writer

    with writer(db_url) as conn:
        append(conn, who, action, kind, name, before, after)


def audit_login(db_url: str, user: str, ok: bool, source: str = "password") -> None:
    """Record a login (``ok``) or a failed one; ``source``: how the identity was given
    (``password``, ``SHELLFLOW_TOKEN``...). A failure names the user tried, never why."""
    append_alone(db_url, user, "login" if ok else "login_failed", "user", user,
                 after={"source": source})  # fmt: skip


_DENIED = re.compile(r"^(?P<who>\S+) lacks the (?P<right>[A-Z_]+) right(?: on (?P<target>.*))?$")


def record_refusal(
    db_url: str, principal: Principal | None, exc: PermissionDenied,
    right: str | None = None, target: str | None = None,
) -> None:  # fmt: skip
    """Append a ``refused`` row for ``exc`` unless one was appended already; never raises
    (a refusal still ends with its own error when the trail cannot be written)."""
    if getattr(exc, "audited", False):
        return
    exc.audited = True  # type: ignore[attr-defined]
    match = _DENIED.match(exc.message)
    who = principal.name if principal is not None else (match["who"] if match else None)
    right = right or (match["right"] if match else "unknown")
    target = target if target is not None else (match["target"] if match else None)
    try:
        append_alone(db_url, who, "refused", right, target, after={"message": exc.message})
    except Exception:  # the refusal is what the user must see, recorded or not
        return


def authorize(
    db_url: str, principal: Principal, right: str, target: str | None = None,
    processor: str | None = None,
) -> None:  # fmt: skip
    """:func:`shellflow.model.access.authorize`, with a refusal appended to the trail."""
    from shellflow.model.access import authorize as check

    try:
        check(principal, right, target, processor)
    except PermissionDenied as exc:
        record_refusal(db_url, principal, exc, right, target)
        raise


# -- reading ---------------------------------------------------------------------------------
COLUMNS = ("id", "at", "who", "action", "kind", "name", "before", "after", "origin")
SHOWN = {"at": "when", "origin": "where"}  # column -> the name users see


def rows(
    conn: Reader, *, since: datetime | None = None, user: str | None = None,
    action: str | None = None, limit: int = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    """Rows newest first, as users see them (``when``, ``where``; before/after parsed)."""
    from shellflow.model.dialects import sql_time
    from shellflow.model.listing import _value

    where, params = [], []
    if since is not None:
        where.append("at >= ?")
        params.append(sql_time(conn.dialect, since))
    if user is not None:
        where.append("who = ?")
        params.append(user)
    if action is not None:
        where.append("action = ?")
        params.append(action)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit{clause} ORDER BY id DESC LIMIT ?"
    out = []
    for record in conn.query(sql, [*params, limit]):
        row = dict(zip(COLUMNS, record, strict=True))
        row["at"] = _value(row["at"], "time")
        for key in ("before", "after"):
            row[key] = json.loads(row[key]) if row[key] else None
        out.append({SHOWN.get(k, k): v for k, v in row.items()})
    return out


def granted_by(conn: Reader, user_name: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(source, right): (who, when)}``: who made each grant or revocation concerning
    ``user_name`` and when (ISO UTC), from the latest ``grant`` or ``revoke`` row of the
    trail. ``source`` and ``right`` are as ``flow ls user -n NAME`` shows them: ``direct``,
    ``role NAME`` or ``revoked``, and ``READ_CALL`` or ``READ_CALL on proc1`` for a grant on
    one processor. A grant made before the trail existed is missing: the caller keeps the
    grant's own columns."""
    from shellflow.model.listing import _value

    found: dict[tuple[str, str], tuple[str, str]] = {}
    records = conn.query(
        "SELECT who, at, action, name, before, after FROM audit"
        " WHERE action IN ('grant', 'revoke') AND kind = 'privilege' ORDER BY id",
    )
    for who, at, action, right, before, after in records:
        holder = json.loads((after if action == "grant" else before) or "{}")
        on = holder.get("processor")
        label = f"{right} on {on}" if on else str(right)
        if action == "revoke":
            if holder.get("user") == user_name and not on:
                found[("revoked", label)] = (who, _value(at, "time"))
        elif holder.get("user") == user_name:
            found[("direct", label)] = (who, _value(at, "time"))
        elif holder.get("role"):
            found[(f"role {holder['role']}", label)] = (who, _value(at, "time"))
    return found
