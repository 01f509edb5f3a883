"""Granting and taking away rights, recording who did it and when.

A user's effective rights are their own grants and their roles' grants, less the rights
revoked for them alone (``user_privileges_revoked``; read in one query by
:func:`shellflow.model.credentials.user_rights`). Taking a right from a user
(``flow delete privilege -u USER -n RIGHT``) removes their direct grant and, when one of
their roles grants it too, records a revocation for that user alone (the role and its
other members keep it). Granting it again clears the revocation.

A right of :data:`shellflow.model.rights.SCOPABLE` may be granted on one processor alone
(``--processor P``: a row of ``user_processor_privileges`` or ``role_processor_privileges``,
gone with the processor). A revocation for a user takes the right away everywhere, its
scoped grants included, so taking a right a role grants on some processor records one too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Table, delete, select

from shellflow.errors import Conflict, NotFound, UsageError
from shellflow.model.base import utcnow
from shellflow.model.security import (
    Privilege,
    Role,
    User,
    role_privileges,
    role_processor_privileges,
    user_privileges,
    user_privileges_revoked,
    user_processor_privileges,
    user_roles,
)

if TYPE_CHECKING:
    from shellflow.model.store import Store


def stamp(store: Store, table: Table, holder: str, holder_id: str, other: str,
          other_id: str) -> None:  # fmt: skip
    """Record who made the link row just added, and when."""
    store.session.flush()
    store.session.execute(
        table.update()
        .where(table.c[f"{holder}_id"] == holder_id, table.c[f"{other}_id"] == other_id)
        .values(granted_by=store.owner, granted_at=utcnow())
    )


def _holder(store: Store, user: str | None, role: str | None) -> User | Role:
    if bool(user) == bool(role):
        raise UsageError("name exactly one of --user or --role")
    holder: User | Role = store.get("user", user) if user else store.get("role", str(role))
    return holder


def via_roles(user: User, privilege: Privilege) -> list[str]:
    """The user's roles that grant ``privilege``."""
    return sorted(r.name for r in user.roles if privilege in r.privileges)


def grant(store: Store, privilege: Privilege, user: str | None, role: str | None) -> str:
    """Grant a right to a user or a role; what was done, in words."""
    holder = _holder(store, user, role)
    right = privilege.name
    if isinstance(holder, Role):
        if privilege in holder.privileges:
            raise Conflict(f"{holder.name!r} already holds {right}")
        holder.privileges.append(privilege)
        stamp(store, role_privileges, "role", holder.id, "privilege", privilege.id)
        return f"granted to role {holder.name!r}"
    cleared = privilege in holder.revoked
    if cleared:
        holder.revoked.remove(privilege)
    if privilege in holder.privileges:
        if not cleared:
            raise Conflict(f"{holder.name!r} already holds {right}")
        store.session.flush()
        return f"revocation for {holder.name!r} cleared"
    holder.privileges.append(privilege)
    stamp(store, user_privileges, "user", holder.id, "privilege", privilege.id)
    return f"granted to {holder.name!r}" + (" (its revocation cleared)" if cleared else "")


def revoke(store: Store, right: str, user: str | None, role: str | None) -> str:
    """Take a right from a role, or from a user (see the module's docstring)."""
    holder = _holder(store, user, role)
    privilege = store.find("privilege", right)
    if isinstance(holder, Role):
        if privilege is None or privilege not in holder.privileges:
            raise NotFound(f"privilege of {holder.name!r}", right,
                           [p.name for p in holder.privileges])  # fmt: skip
        holder.privileges.remove(privilege)
        return f"privilege {right} of role {holder.name!r}"
    roles = via_roles(holder, privilege) if privilege is not None else []
    roles += [r for r in scoped_via_roles(store, holder, privilege) if r not in roles]
    direct = privilege is not None and privilege in holder.privileges
    pending = bool(roles) and privilege not in holder.revoked
    if not direct and not pending:
        held = {p.name for p in holder.privileges}
        held |= {p.name for r in holder.roles for p in r.privileges}
        held -= {p.name for p in holder.revoked}
        missing = NotFound(f"privilege of {holder.name!r}", right, sorted(held))
        on = sorted(p for r, p in scoped_of(store, holder) if r == right)
        if on:  # held on some processors alone: say how to take those back
            missing.message += f" (held on {', '.join(on)} alone: add --processor)"
            missing.args = (missing.message,)
        raise missing
    assert privilege is not None
    if direct:
        holder.privileges.remove(privilege)
    if pending:
        holder.revoked.append(privilege)
        stamp(store, user_privileges_revoked, "user", holder.id, "privilege", privilege.id)
        named = ", ".join(repr(r) for r in roles)
        return (f"privilege {right} of {holder.name!r} (revoked for this user alone: role "
                f"{named} grants it)")  # fmt: skip
    return f"privilege {right} of {holder.name!r}"


def stamp_role(store: Store, user: User, role: Role) -> None:
    stamp(store, user_roles, "user", user.id, "role", role.id)


# -- on one processor ----------------------------------------------------------------------
def _on_table(holder: User | Role) -> tuple[Table, str]:
    if isinstance(holder, Role):
        return role_processor_privileges, "role_id"
    return user_processor_privileges, "user_id"


def scoped_of(store: Store, holder: User | Role) -> list[tuple[str, str]]:
    """(right, processor) of each grant the holder has on one processor alone."""
    from shellflow.model.network import Processor

    table, key = _on_table(holder)
    query = (
        select(Privilege.name, Processor.name)
        .join(table, table.c.privilege_id == Privilege.id)
        .join(Processor, Processor.id == table.c.processor_id)
        .where(table.c[key] == holder.id)
        .order_by(Privilege.name, Processor.name)
    )
    return [(str(r), str(p)) for r, p in store.session.execute(query)]


def scoped_via_roles(store: Store, user: User, privilege: Privilege | None) -> list[str]:
    """The user's roles that grant ``privilege`` on some processor."""
    if privilege is None or not user.roles:
        return []
    table = role_processor_privileges
    query = (
        select(Role.name)
        .join(table, table.c.role_id == Role.id)
        .where(table.c.privilege_id == privilege.id, Role.id.in_([r.id for r in user.roles]))
    )
    return sorted(set(store.session.scalars(query)))


def scopable(right: str) -> None:
    """UsageError (exit 2) unless ``right`` may be held on one processor alone."""
    from shellflow.model.rights import SCOPABLE

    if right not in SCOPABLE:
        raise UsageError(f"{right} cannot be granted on one processor; only "
                         f"{', '.join(SCOPABLE)} can (--processor)")  # fmt: skip


def grant_on(store: Store, privilege: Privilege, user: str | None, role: str | None,
             processor: str) -> str:  # fmt: skip
    """Grant a right on processor ``processor`` alone; what was done, in words."""
    scopable(privilege.name)
    holder = _holder(store, user, role)
    target = store.get("processor", processor)
    table, key = _on_table(holder)
    where = (table.c[key] == holder.id, table.c.privilege_id == privilege.id,
             table.c.processor_id == target.id)  # fmt: skip
    if store.session.execute(select(table.c[key]).where(*where)).first() is not None:
        raise Conflict(f"{holder.name!r} already holds {privilege.name} on {processor!r}")
    store.session.execute(table.insert().values({
        key: holder.id, "privilege_id": privilege.id, "processor_id": target.id,
        "granted_by": store.owner, "granted_at": utcnow(),
    }))  # fmt: skip
    whom = f"role {holder.name!r}" if isinstance(holder, Role) else repr(holder.name)
    if isinstance(holder, User) and privilege in holder.revoked:
        store.notes.append(
            f"{privilege.name} is revoked for {holder.name!r}, which this grant does not "
            f"undo; 'flow add privilege -u {holder.name} -n {privilege.name}' clears it"
        )
    return f"granted to {whom} on processor {processor!r}"


def revoke_on(store: Store, right: str, user: str | None, role: str | None,
              processor: str) -> str:  # fmt: skip
    """Take back a grant of ``right`` on processor ``processor`` alone."""
    scopable(right)
    holder = _holder(store, user, role)
    table, key = _on_table(holder)
    privilege = store.find("privilege", right)
    target = store.find("processor", processor)
    found = 0
    if privilege is not None and target is not None:
        found = store.session.execute(delete(table).where(
            table.c[key] == holder.id, table.c.privilege_id == privilege.id,
            table.c.processor_id == target.id,
        )).rowcount  # type: ignore[attr-defined]  # fmt: skip
    if not found:
        held = [f"{r} on {p}" for r, p in scoped_of(store, holder)]
        raise NotFound(f"privilege of {holder.name!r}", f"{right} on {processor}", held)
    whom = f"role {holder.name!r}" if isinstance(holder, Role) else repr(holder.name)
    return f"privilege {right} of {whom} on processor {processor!r}"
