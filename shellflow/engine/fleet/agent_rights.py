"""What the agent may do, checked as every other front checks it.

The agent acts on behalf of the database, with its own principal (the service identity
``flow db init`` creates, or the local owner who starts it): it needs ``START_AGENT`` to
serve a node, ``START_PROCESSOR`` to deploy and start a processor's worker,
``STOP_PROCESSOR`` to stop one that was asked to pause, stop or go, and
``UPDATE_PROCESSOR`` to write a processor's status. A refusal is a
``PermissionDenied`` raised where the agent would act: ``run`` ends with exit 5 before
registering, and inside the reconcile loop it is logged once per processor and tried again
later (a right granted meanwhile takes effect when the agent's principal is resolved again,
at its next start). Kept out of ``agent.py``, which is at the module size limit.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.access import Principal

AGENT_RIGHTS = ("START_AGENT", "START_PROCESSOR", "STOP_PROCESSOR", "UPDATE_PROCESSOR")


class AgentRights:
    """Mixed into :class:`~shellflow.engine.fleet.agent.Agent`: who it acts as, and the check."""

    settings: Settings

    @cached_property
    def principal(self) -> Principal:
        """Resolved once, when first needed (tests and embedders may set it before ``run``),
        against the agent's own settings: its token or session is that of its database."""
        from shellflow.model.access import current_principal

        return current_principal(self.settings)

    def authorize(self, right: str, target: str | None = None) -> None:
        """Raise ``PermissionDenied`` (exit 5) unless the agent's principal holds ``right``."""
        from shellflow.model.access import authorize

        authorize(self.principal, right, target)
