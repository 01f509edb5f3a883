"""What every command receives: the effective settings and who is acting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from shellflow.config import Settings
    from shellflow.model.access import Principal
    from shellflow.model.listing import Reader
    from shellflow.model.store import Store


def _current_principal() -> Principal:
    from shellflow.model.access import current_principal

    return current_principal()


@dataclass
class AppContext:
    settings: Settings
    principal: Principal = field(default_factory=_current_principal)

    def authorize(self, right: str, target: str | None = None) -> None:
        """Every command asks here before acting (see ``shellflow.model.access``); a
        refusal is appended to the audit trail in its own transaction
        (``shellflow.model.audit``), the command then ends with exit 5."""
        from shellflow.model.audit import authorize

        authorize(self.settings.db, self.principal, right, target)

    def reader(self) -> AbstractContextManager[Reader]:
        """A read-only connection of the light SQL path (no SQLAlchemy)."""
        from shellflow.model.listing import reader

        return reader(self.settings.db)

    def store(self) -> AbstractContextManager[Store]:
        """The ORM-backed store, in one transaction (imports SQLAlchemy)."""
        from shellflow.commands._store import store_scope
        from shellflow.model.repos import split_ini

        allow = split_ini(self.settings.repos_allow)
        return store_scope(self.settings.db, self.principal.name, allow)


pass_app = click.make_pass_decorator(AppContext)
