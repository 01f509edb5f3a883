"""Handles on calls in flight: what ``socket(...)`` and a workflow's ``(...)`` return.

Both have ``.id`` (a call id, good for ``flow ls call --id ID --graph``), ``.flow`` (the flow
run every call of it shares) and ``.get(timeout=None)``, which returns the result as
plain JSON values or raises :class:`~shellflow.errors.CallFailed` with the remote error's
message (:class:`~shellflow.errors.TimedOut` when ``timeout`` seconds pass first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shellflow.errors import TimedOut

if TYPE_CHECKING:
    from shellflow.engine.calls.sender import Sent


class CallResult:
    """One call of one socket."""

    def __init__(self, sent: Sent, socket: str) -> None:
        self._sent = sent
        self.socket = socket

    @property
    def id(self) -> str:
        return self._sent.call_id

    @property
    def flow(self) -> str:
        return self._sent.flow

    @property
    def calls(self) -> list[str]:
        return [self._sent.call_id]

    def get(self, timeout: float | None = None) -> Any:
        from shellflow.engine.calls.sender import wait

        return wait(self._sent, timeout)

    def ready(self) -> bool:
        return bool(self._sent.handle.ready())

    def __repr__(self) -> str:
        return f"<CallResult {self.socket} {self.id}>"


class FlowResult:
    """A workflow (pipeline, parallel, funnel) run by this process in a thread of its own.

    ``calls`` lists the ids of the calls sent so far, in the order they were sent.
    """

    def __init__(self, flow: str, run: Callable[[FlowResult], Any]) -> None:
        self.flow = flow
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, args=(run,), name=f"shellflow-flow-{flow[:8]}", daemon=True
        )
        self._thread.start()

    def _main(self, run: Callable[[FlowResult], Any]) -> None:
        try:
            self._value = run(self)
        except BaseException as exc:  # handed to whoever calls get()
            self._error = exc
        finally:
            self._done.set()
            self._first.set()

    def sent(self, call_id: str) -> None:
        """Note a call of this run (called from the threads that send them)."""
        with self._lock:
            self.calls.append(call_id)
        self._first.set()

    @property
    def id(self) -> str:
        """The first call sent (waits until one is); any call of the run shows its graph."""
        self._first.wait()
        with self._lock:
            if self.calls:
                return self.calls[0]
        self.get()  # no call was sent: the run failed before; raise its error
        raise RuntimeError("workflow sent no call")  # pragma: no cover  (get() raised)

    def ready(self) -> bool:
        return self._done.is_set()

    def get(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimedOut(f"flow run {self.flow} did not finish within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        state = "done" if self.ready() else "running"
        return f"<FlowResult {self.flow} {state}, {len(self.calls)} calls>"
