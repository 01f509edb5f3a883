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


@dataclass
class AppContext:
    """``principal`` is resolved on first use, not when the command starts: ``flow login``,
    ``flow logout`` and ``flow config`` must work while a stale session would be refused,
    and commands that never ask pay nothing."""

    settings: Settings
    resolved: Principal | None = field(default=None, repr=False)

    @property
    def principal(self) -> Principal:
        if self.resolved is None:
            from shellflow.model.access import current_principal

            self.resolved = current_principal(self.settings)
        return self.resolved

    def authorize(
        self, right: str, target: str | None = None, processor: str | None = None
    ) -> None:
        """Every command asks here before acting (see ``shellflow.model.access``); a
        refusal is appended to the audit trail in its own transaction
        (``shellflow.model.audit``), the command then ends with exit 5."""
        from shellflow.model.audit import authorize

        authorize(self.settings.db, self.principal, right, target, processor)

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
