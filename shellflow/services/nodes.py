"""Node actions: cordon, uncordon and drain (``flow node``), one right for all three.

They only write the node's ``state`` (through the model's store, so the audit trail has it):
the placement (:mod:`shellflow.engine.fleet.placement`, run twice a second by the agent
holding the lease) acts on it. ``cordoned``: nothing new is placed there, what runs stays.
``drained``: nothing new, and what runs there is placed on other live nodes; its agent then
stops the old workers (warm shutdown) and the new node's agent starts new ones.
``active`` (uncordon) takes processors again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shellflow.config import Settings
    from shellflow.model.access import Principal

STATES = {"cordon": "cordoned", "uncordon": "active", "drain": "drained"}
RIGHT = "UPDATE_NODE"


def set_state(settings: Settings, principal: Principal, name: str, verb: str) -> tuple[str, str]:
    """Authorise and write node ``name``'s state for ``verb`` (a key of :data:`STATES`);
    returns (state before, state now). ``NotFound`` (exit 3) for an unknown node."""
    from shellflow.model.audit import authorize
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    authorize(settings.db, principal, RIGHT, name)
    state = STATES[verb]
    with session_scope(settings.db) as session:
        store = Store(session, principal.name)
        previous = str(store.get("node", name).state or "active")
        if previous != state:
            store.update("node", name, {"state": state})
    return previous, state
