"""The one authorisation gate every command passes through.

Until roles are enforced (a later issue), the local owner, the operating-system user running
``flow`` on the machine that holds the configuration, may do everything and nobody else may.
Enforcing users, roles and privileges later is a change to :func:`authorize` alone.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from shellflow.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    """Who is acting: a name, and whether it is the local owner."""

    name: str
    local_owner: bool = False


def current_principal() -> Principal:
    """The person running this ``flow``: for now always the local owner.

    Commands obtain their principal only through this function (looked up when called), so
    a login (a later issue) changes who acts here and nowhere else.
    """
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Principal(name=name, local_owner=True)


def authorize(principal: Principal, right: str, target: str | None = None) -> None:
    """Raise :class:`PermissionDenied` (exit 5) unless ``principal`` holds ``right``.

    An unknown right is a programming error, caught now rather than when roles are enforced
    and a misspelt right would lock everyone out.
    """
    from shellflow.model.rights import RIGHTS

    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    if principal.local_owner:
        return
    what = f" on {target}" if target else ""
    raise PermissionDenied(f"{principal.name} lacks the {right} right{what}")
