"""The one authorisation gate every command passes through.

Who acts is a :class:`Principal`, resolved once per process by :func:`current_principal`
(logins and tokens are resolved there, and nowhere else). A principal carries
the rights it holds, read with one query when it is resolved (its own grants and its
roles' grants, less the grants revoked for it alone), so :func:`authorize` is a set look-up:
no round trip per right, whatever the front (CLI, compose, Python API, dashboard, agent).
The local owner holds every right.

A grant may hold a right on one processor alone (``flow add privilege -u U -n READ_CALL
--processor P``; the rights :data:`shellflow.model.rights.SCOPABLE`): the principal keeps
those in ``scoped`` (right -> processor names), read in the same query, and
``holds(right, processor=P)`` answers for P: the right held everywhere, or held on P.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    session or token that gave it ends (None: it does not). ``scoped``: the rights held on
    some processors only, each with the names of those processors.
    """

    name: str
    local_owner: bool = False
    rights: frozenset[str] = field(default_factory=frozenset)
    user_id: str | None = None
    source: str = "os user"
    expires: datetime | None = None
    scoped: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)

    def holds(self, right: str, processor: str | None = None) -> bool:
        """Whether this principal may use ``right`` everywhere, or (``processor`` named) on
        that processor: held everywhere, or granted on it."""
        if self.local_owner or "ALL" in self.rights or right in self.rights:
            return True
        return processor is not None and processor in self.scoped.get(right, ())

    def holds_somewhere(self, right: str) -> bool:
        """Whether ``right`` is held everywhere or on at least one processor."""
        return self.holds(right) or bool(self.scoped.get(right))

    def processors(self, right: str) -> frozenset[str] | None:
        """The processors on which ``right`` is held; None when it is held everywhere."""
        return None if self.holds(right) else self.scoped.get(right, frozenset())


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


def authorize(
    principal: Principal, right: str, target: str | None = None, processor: str | None = None
) -> None:
    """Raise :class:`PermissionDenied` (exit 5) unless ``principal`` holds ``right``
    (everywhere, or on ``processor`` when one is named).

    An unknown right is a programming error, caught now rather than when roles are enforced
    and a misspelt right would lock everyone out.
    """
    from shellflow.model.rights import RIGHTS

    if right not in RIGHTS:
        raise ValueError(f"unknown right {right!r}")
    if principal.holds(right, processor):
        return
    what = f" on {target}" if target else ""
    raise PermissionDenied(f"{principal.name} lacks the {right} right{what}")
