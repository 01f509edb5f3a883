"""A stream rides out a lost broker or result backend: bounded back-off, one line, a grace time.

When the broker refuses a publish (the sender's thread) or the result backend's connection
drops (the collecting thread), the stream does not end: it says so once on stderr, starts
the embedded broker again if that is what was lost (from its append-only file: the calls
queued and the results stored survive a ``kill -9``), and tries again after a back-off
that doubles from :data:`BACKOFF_FIRST` to :data:`BACKOFF_MAX` seconds. Once the service
answers it says so and goes on (the collecting thread subscribes again and reads the
stored results of every unfinished call, so a result published during the gap is not
missed). A service still down after the grace time (``--reconnect-timeout``, default
:data:`RECONNECT_TIMEOUT` seconds) raises :class:`GaveUp`; the stream then exits 6 naming
how many calls are unaccounted for and how to find them (each was recorded ``pending`` when
it was sent: ``shellflow.client.stream_records``), and leaves them to run.

Only a service this stream has reached is waited for: one that never answered (a mistyped
URL, a server not started) is said at once, exit 6, as for a one-shot call. The embedded
broker is the exception: the stream starts it whenever it is found down.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from shellflow.errors import ExitCode, ServiceUnavailable, ShellflowError

RECONNECT_TIMEOUT = 60.0  # seconds a lost service may take to come back
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0


class GaveUp(ShellflowError):
    """A service stayed down past the grace time: exit 6, as ServiceUnavailable."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, cause: ServiceUnavailable, grace: float) -> None:
        super().__init__(f"{cause.message} (for more than {grace:g} s)")
        self.service = cause.service


class Outage:
    """The lost services of one stream, shared by its two threads."""

    def __init__(self, settings: Any, grace: float, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.grace = grace
        self.say = say
        self.lock = threading.Lock()
        self.since: dict[str, float] = {}  # service -> when it was first found down
        self.reached: set[str] = set()  # services that answered during this stream
        self.pause: dict[str, float] = {}

    def failed(self, exc: ServiceUnavailable) -> None:
        """The service of ``exc`` failed: wait a moment before the caller tries again.

        Raises :class:`GaveUp` once it has been down for the grace time.
        """
        service = exc.service
        if service not in self.reached and not self._embedded(service):
            raise exc
        now = time.monotonic()
        with self.lock:
            first = service not in self.since
            since = self.since.setdefault(service, now)
            pause = self.pause.get(service, BACKOFF_FIRST)
            self.pause[service] = min(pause * 2, BACKOFF_MAX)
        if first:
            self.say(f"flow: {exc.message}; reconnecting (for up to {self.grace:g} s)")
        if now - since >= self.grace:
            raise GaveUp(exc, self.grace)
        self._restart_embedded()
        time.sleep(min(pause, max(0.0, since + self.grace - now)))

    def recovered(self, service: str) -> None:
        """The service answered: forget its outage (saying so if there was one)."""
        self.reached.add(service)
        if service not in self.since:  # the common case, without the lock
            return
        with self.lock:
            since = self.since.pop(service, None)
            self.pause.pop(service, None)
        if since is not None:
            self.say(f"flow: the {service} answers again after {time.monotonic() - since:.1f} s")

    def _embedded(self, service: str | None = None) -> bool:
        """Whether ``service`` (by default: the broker or the result backend) is the
        embedded broker (a unix socket)."""
        from shellflow.urls import Backend, backend_of

        urls = {"broker": (self.settings.broker,), "result backend": (self.settings.backend,)}
        chosen = urls.get(service or "", (self.settings.broker, self.settings.backend))
        return any(backend_of(url) is Backend.REDIS_SOCKET for url in chosen)

    def _restart_embedded(self) -> None:
        """Start the embedded broker again if the lost service is it (else nothing to do)."""
        if not self._embedded():
            return
        urls = (self.settings.broker, self.settings.backend)
        from shellflow.engine.transport import embedded_broker

        with contextlib.suppress(ServiceUnavailable):  # tried again after the next pause
            embedded_broker.ensure_for_urls(*urls)
