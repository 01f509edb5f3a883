"""Revoking the calls a forced change of the network strands, and telling their waiters.

``flow delete socket S --force`` (and every other change ``shellflow.model.busy`` refuses
without ``--force``) commits first, then hands the calls it found here, with the reason:

1. their records become ``revoked``, with the reason in a ``revoked`` event;
2. their results are marked revoked in the result backend, with the reason: whoever waits
   for one (a stream, ``flow task result --wait``) learns at once, as after a cancel;
3. the workers are told to discard them, and to stop those running (one broadcast);
4. the waiting messages of the affected sockets' broker queues are taken out
   (:func:`shellflow.engine.transport.purge.drain`), and the calls they carried are
   revoked as above, recorded or not. A stream sending to a deleted socket may publish
   for up to :data:`shellflow.engine.calls.sender.ROUTE_TTL` seconds more (it reads the
   socket's route again after that and stops), so the queues are read once more after
   that time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from shellflow.config import Settings
from shellflow.engine.calls.outcomes import revoke
from shellflow.engine.calls.sender import ROUTE_TTL, app_for
from shellflow.engine.transport.purge import Taken
from shellflow.errors import ServiceUnavailable


@dataclass
class Stranded:
    """What was revoked: call ids with their reasons, and messages taken from each queue."""

    revoked: dict[str, str] = field(default_factory=dict)
    drained: dict[str, int] = field(default_factory=dict)


def revoke_stranded(
    settings: Settings, calls: Mapping[str, str], queues: Mapping[str, str], *,
    settle: float = ROUTE_TTL,
) -> Stranded:  # fmt: skip
    """Revoke ``calls`` (id -> reason) and empty ``queues`` (socket's name -> reason) as the
    module docstring says; ``settle``: seconds before the queues are read the second time."""
    done = Stranded()
    _revoke(settings, dict(calls), done)
    if not queues:
        return done
    for sweep in range(2):
        if sweep:
            time.sleep(settle)
        for queue, reason in queues.items():
            taken = _drain(settings, queue)
            done.drained[queue] = done.drained.get(queue, 0) + len(taken)
            about = {t.call_id: (t.name, t.flow) for t in taken}
            _revoke(settings, dict.fromkeys(about, reason), done, about)
    return done


def _revoke(
    settings: Settings, calls: dict[str, str], done: Stranded,
    about: dict[str, tuple[str | None, str | None]] | None = None,
) -> None:  # fmt: skip
    from shellflow.model import call_writes
    from shellflow.model.listing import writer

    calls = {c: r for c, r in calls.items() if c not in done.revoked}
    if not calls:
        return
    with writer(settings.db) as conn:
        recorded = call_writes.record_revoked(conn, calls, about=about)
    backend = app_for(settings).backend
    try:
        for call_id in calls:  # an ended call's result is kept: only those now revoked
            if call_id in recorded:
                backend.mark_as_revoked(call_id, calls[call_id])
    except Exception as exc:
        raise ServiceUnavailable("result backend", settings.backend, str(exc)) from exc
    revoke(settings, list(calls), terminate=True)
    done.revoked.update((c, calls[c]) for c in recorded)


def _drain(settings: Settings, queue: str) -> list[Taken]:
    from shellflow.engine.transport.purge import drain

    try:
        return drain(app_for(settings), queue)
    except Exception as exc:
        from kombu.exceptions import OperationalError

        if isinstance(exc, (OSError, OperationalError)):
            raise ServiceUnavailable("broker", settings.broker, str(exc)) from exc
        raise


def waiting(settings: Settings, queues: list[str]) -> dict[str, int] | None:
    """Messages waiting in these sockets' queues; None when the broker cannot be asked."""
    from shellflow.engine.transport.purge import waiting as depths

    try:
        return depths(settings.broker, queues)
    except Exception:  # a broker down: the caller says it could not look
        return None
