"""The one authorisation gate every command passes through.

Who acts is a :class:`Principal`, resolved once per process by :func:`current_principal`
(logins and tokens are resolved there, and nowhere else). A principal carries
the rights it holds, read with one query when it is resolved (its own grants and its
roles' grants, less the grants revoked for it alone), so :func:`authorize` is a set look-up:
no round trip per right, whatever the front (CLI, compose, Python API, dashboard, agent).
The local owner holds every right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from shellflow.errors import PermissionDenied

if TYPE_CHECKING:
    from shellflow.config import Settings


@dataclass(frozen=True)
class Principal:
    """Who is acting.

    ``rights``: the rights held (``ALL`` holds every one); ignored for the local owner.
    ``source``: where the identity came from, as ``flow whoami`` shows it (``os user``,
    ``login``, ``SHELLFLOW_TOKEN``, ``database URL``, ``service``). ``expires``: when the
    session or token that gave it ends (None: it does not).
    """

    name: str
    local_owner: bool = False
    rights: frozenset[str] = field(default_factory=frozenset)
    user_id: str | None = None
    source: str = "os user"
    expires: datetime | None = None

    def holds(self, right: str) -> bool:
        """Whether this principal may use ``right``."""
        return self.local_owner or "ALL" in self.rights or right in self.rights


def current_principal(settings: Settings | None = None) -> Principal:
    """The person running this ``flow``, resolved in this order: the token in
    ``SHELLFLOW_TOKEN``, the session ``flow login`` left (sessions.json, 0600), else the
    owner: on SQLite the OS user owning the embedded database (by uid), on PostgreSQL the
    role of the database URL (:mod:`shellflow.model.credentials`).

    A token that is unknown, expired or revoked is refused (exit 5), never silently replaced
    by the owner. Commands obtain their principal only through this function (their
    ``AppContext`` resolves it on first use); without ``settings`` the effective settings
    are loaded as ``flow`` would (the Python API and the dashboard).
    """
    from shellflow.model.credentials import resolve

    if settings is None:
        from shellflow.config import load_settings

        settings = load_settings()
    return resolve(settings)


def authorize(principal: Principal, right: str, target: str | None = None) -> None:
    """Raise :class:`PermissionDenied` (exit 5) unless ``principal`` holds ``right``.

    An unknown right is a programming error, caught now rather than when roles are enforced
    and a misspelt right would lock everyone out.
    """
    from shellflow.model.rights import RIGHTS

    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    if principal.holds(right):
        return
    what = f" on {target}" if target else ""
    raise PermissionDenied(f"{principal.name} lacks the {right} right{what}")
