"""Granting and taking away rights, recording who did it and when.

A user's effective rights are their own grants and their roles' grants, less the rights
revoked for them alone (``user_privileges_revoked``; read in one query by
:func:`shellflow.model.credentials.user_rights`). Taking a right from a user
(``flow delete privilege -u USER -n RIGHT``) removes their direct grant and, when one of
their roles grants it too, records a revocation for that user alone (the role and its
other members keep it). Granting it again clears the revocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Table

from shellflow.errors import Conflict, NotFound, UsageError
from shellflow.model.base import utcnow
from shellflow.model.security import (
    Privilege,
    Role,
    User,
    role_privileges,
    user_privileges,
    user_privileges_revoked,
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
    direct = privilege is not None and privilege in holder.privileges
    pending = bool(roles) and privilege not in holder.revoked
    if not direct and not pending:
        held = {p.name for p in holder.privileges}
        held |= {p.name for r in holder.roles for p in r.privileges}
        held -= {p.name for p in holder.revoked}
        raise NotFound(f"privilege of {holder.name!r}", right, sorted(held))
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
