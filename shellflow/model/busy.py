"""Which calls a change of the network would strand, and the refusal that names them.

Deleting, renaming or re-pointing an object under running work leaves its calls with no
worker to run them and no consumer for their messages: a stream waiting for them would
wait forever. So :class:`shellflow.model.store.Store` asks here first: an object with
calls ``pending`` or running is refused (``Conflict``, exit 4) unless the change is
forced; a forced change collects the calls (and the broker queues whose messages go with
them) in a :class:`Revocation`, which the caller carries out once the change is committed
(``shellflow.services.network``): the calls end ``revoked`` with the reason.

Which calls belong to an object:

- a socket: the calls of the socket;
- a processor: the calls of its sockets (its worker runs them);
- a queue: the calls of the sockets in it (their broker queues are bound to its exchange);
- a plug: the calls of its target socket sent by the plug (the target's calls whose
  parent is a call of the plug's source): what the plug has fed and not yet seen end.

A call is counted while its record says ``pending``, ``received``, ``running`` or
``retry`` (:data:`shellflow.model.calls.UNFINISHED_WHERE`). The model cannot see the
broker, where a stream's calls wait unrecorded until a worker takes them: the store leaves
the sockets' queues in the :class:`Revocation` even when nothing is forced, and the caller
counts their messages before committing (``shellflow.services.network.check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from shellflow.errors import Conflict
from shellflow.model.call_writes import UNFINISHED_STATES as UNFINISHED
from shellflow.model.calls import Call
from shellflow.model.network import Socket

# The changes that strand calls, by kind: what moves a socket's calls to another worker or
# another broker queue (a socket's queue in the broker is named after the socket). Any
# other field (a description, a schedule, a concurrency) is changed under running work.
# A processor's code (its repository, branch, commit, tag, module and module path) is not
# among them: the agent deploys the new code and its worker takes the waiting calls from
# the same queues, which is how a broken processor is mended with its calls still waiting.
MOVES: dict[str, frozenset[str]] = {
    "socket": frozenset(("rename", "queue", "processor", "task")),
    "processor": frozenset(("rename",)),
    "queue": frozenset(("rename", "qtype", "durable")),
    "plug": frozenset(("rename", "source", "target", "queue", "argument")),
}
# A requested status that takes the processor's worker away for good (``flow proc remove``).
REMOVING = {"requested_status": "removed"}


@dataclass
class Revocation:
    """What a change strands: calls to revoke, with why, and the broker queues (sockets'
    names) whose waiting messages go with them. Not ``forced``, it holds only the queues,
    which the caller looks into before committing: a message waiting there is a call too,
    recorded or not (:func:`refusal`)."""

    forced: bool = False
    calls: dict[str, str] = field(default_factory=dict)  # call id -> reason
    queues: dict[str, str] = field(default_factory=dict)  # socket (its queue's name) -> reason
    owners: dict[str, str] = field(default_factory=dict)  # socket -> "kind 'name'" changed

    def __bool__(self) -> bool:
        """Anything to carry out once committed (a change not forced carries nothing)."""
        return self.forced and bool(self.calls or self.queues)


def refusal(owner: str, count: int) -> Conflict:
    """The one refusal: ``socket 's1' has 12 calls pending or running; --force ...``."""
    calls = f"{count} call" + ("" if count == 1 else "s")
    return Conflict(f"{owner} has {calls} pending or running; --force revokes them")


def sockets_of(session: Session, kind: str, obj: Any) -> list[Socket]:
    """The sockets whose calls belong to the object (a plug: none, see :func:`busy_calls`)."""
    if kind == "socket":
        return [obj]
    if kind == "processor":
        return list(obj.sockets)
    if kind == "queue":
        return list(session.scalars(select(Socket).where(Socket.queue_id == obj.id)))
    return []


def busy_calls(session: Session, kind: str, obj: Any) -> list[str]:
    """Ids of the object's calls that have not ended (module docstring: whose they are)."""
    if kind == "plug":
        parent = aliased(Call)
        query = (
            select(Call.id)
            .join(parent, parent.id == Call.parent)
            .where(
                Call.socket_id == obj.target_id,
                parent.socket_id == obj.source_id,
                Call.state.in_(UNFINISHED),
            )
        )
    else:
        ids = [s.id for s in sockets_of(session, kind, obj)]
        if not ids:
            return []
        query = select(Call.id).where(Call.socket_id.in_(ids), Call.state.in_(UNFINISHED))
    return list(session.scalars(query.order_by(Call.created)))


def moves(kind: str, values: dict[str, Any], obj: Any) -> list[str]:
    """The asked changes of ``obj`` that would strand its calls (none: an idle change)."""
    found = []
    for key in sorted(MOVES.get(kind, ())):
        if key not in values:
            continue
        if key == "rename":
            if values[key] != obj.name:
                found.append(key)
        elif _current(obj, key) != values[key]:
            found.append(key)
    for key, value in REMOVING.items():
        if kind == "processor" and values.get(key) == value and getattr(obj, key) != value:
            found.append(key)
    return found


def _current(obj: Any, key: str) -> Any:
    """The object's value for a store key (a reference by name, a socket's task by function)."""
    value = getattr(obj, key, None)
    if key == "task" and value is not None:
        return value.function
    return getattr(value, "name", value)


def claim(
    session: Session, kind: str, obj: Any, what: str, force: bool, revocation: Revocation
) -> None:
    """Refuse a change (``what``: ``deleted``, ``renamed``...) of an object with unfinished
    calls, or, with ``force``, add them to ``revocation``; either way add its sockets'
    broker queues (to be counted before the commit, or emptied after a forced one)."""
    ids = busy_calls(session, kind, obj)
    owner = f"{kind} {obj.name!r}"
    if ids and not force:
        raise refusal(owner, len(ids))
    revocation.forced = force
    reason = f"{kind} {obj.name} {what}"
    for call_id in ids:
        revocation.calls.setdefault(call_id, reason)
    for socket in sockets_of(session, kind, obj):
        revocation.queues.setdefault(socket.name, reason)
        revocation.owners.setdefault(socket.name, owner)
