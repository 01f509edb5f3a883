"""Reading the workers' live metrics: the one subscription ``flow top`` and the dashboard share.

Workers publish each socket's figures once a second on ``<processor>.metrics``
(:mod:`shellflow.engine.records.metrics`). A reader subscribes to the channels of the
processors it may see, keeps each worker's latest message in a
:class:`~shellflow.engine.records.metrics.Totals` and asks it for one row per socket.

**Scope.** ``processors`` None reads every processor's channel (``*.metrics``: LISTEN held
everywhere); otherwise only the named processors' channels are subscribed, and a message is
kept only when its ``room`` names the processor of the channel it came on, so a message
sent on an allowed channel cannot pose as another processor's figures. The front-ends say
which processors a principal may read (:func:`listen_scope`); this module never decides it
alone. Imports nothing heavy at module level (the CLI imports it on start-up).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shellflow.engine.records.metrics import Row
    from shellflow.model.access import Principal

RIGHT = "LISTEN"  # the right ``flow top`` and ``flow listen -c metrics`` ask for


def listen_scope(principal: Principal) -> frozenset[str] | None:
    """The processors whose metrics ``principal`` may read; None for every one (LISTEN held
    everywhere), an empty set for none."""
    return principal.processors(RIGHT)


def patterns(processors: Collection[str] | None) -> list[str]:
    """The Redis patterns of these processors' metrics channels (None: every processor's)."""
    from shellflow.engine.records.events import channel_pattern
    from shellflow.engine.records.metrics import CHANNEL

    if processors is None:
        return [f"*.{CHANNEL}"]
    return [channel_pattern(name, CHANNEL) for name in sorted(processors)]


class MetricsFeed:
    """A subscription to metrics channels, added up as it is read.

    ``ServiceUnavailable`` when the pub/sub server cannot be reached (here or in
    :meth:`poll`); with ``processors`` empty nothing is subscribed and nothing ever comes.
    """

    def __init__(self, url: str, processors: Collection[str] | None = None) -> None:
        from shellflow.engine.records.events import redis_client
        from shellflow.engine.records.metrics import Totals
        from shellflow.errors import ServiceUnavailable

        self.url = url
        self.processors = None if processors is None else frozenset(processors)
        self.patterns = patterns(self.processors) if self.processors != frozenset() else []
        self.totals = Totals()
        self._client: Any = None
        self._pubsub: Any = None
        if not self.patterns:
            return
        try:
            self._client = redis_client(url)
            self._pubsub = self._client.pubsub()
            self._pubsub.psubscribe(*self.patterns)
        except Exception as exc:
            self.close()
            raise ServiceUnavailable("pub/sub", url, str(exc)) from exc

    def confirm(self, timeout: float = 10.0) -> None:
        """Wait for the server's confirmation of the first pattern (from then on every
        message published reaches this feed); ``ServiceUnavailable`` without it."""
        from shellflow.errors import ServiceUnavailable

        if self._pubsub is None:
            return
        try:
            confirmed = self._pubsub.get_message(timeout=timeout)
        except Exception as exc:
            raise ServiceUnavailable("pub/sub", self.url, str(exc)) from exc
        if not confirmed or confirmed.get("type") != "psubscribe":
            raise ServiceUnavailable("pub/sub", self.url, "subscription not confirmed")

    def poll(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for one message; True when it was a metrics
        message in scope, kept as its worker's latest."""
        import time

        from shellflow.errors import ServiceUnavailable

        if self._pubsub is None:
            time.sleep(max(0.0, timeout))
            return False
        try:
            raw = self._pubsub.get_message(timeout=max(0.0, timeout))
        except Exception as exc:
            raise ServiceUnavailable("pub/sub", self.url, str(exc)) from exc
        if raw is None or raw.get("type") != "pmessage":
            return False
        return self.add(raw.get("channel"), raw.get("data"), time.monotonic())

    def add(self, channel: bytes | str | None, payload: Any, now: float) -> bool:
        """Keep one message received on ``channel`` when it is in scope (see the module)."""
        from shellflow.engine.records.events import decoded
        from shellflow.engine.records.metrics import CHANNEL

        event = decoded(payload) if isinstance(payload, bytes | str) else None
        if event is None:
            return False
        room = event.get("room")
        if isinstance(channel, bytes):
            channel = channel.decode("utf-8", "replace")
        if not isinstance(room, str) or channel != f"{room}.{CHANNEL}":
            return False  # a message posing as another processor's, or not one of ours
        if self.processors is not None and room not in self.processors:
            return False
        return self.totals.add(event, now)

    def rows(self, now: float) -> list[Row]:
        """Each socket's total (workers silent for a while dropped), busiest first."""
        return self.totals.rows(now)

    def close(self) -> None:
        for thing in (self._pubsub, self._client):
            if thing is not None:
                with contextlib.suppress(Exception):  # a broken connection: nothing to free
                    thing.close()
        self._pubsub = self._client = None
