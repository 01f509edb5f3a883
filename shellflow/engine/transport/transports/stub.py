"""The in-memory transport: keeps every message it is given, for fast in-process tests.

A test hands a :class:`StubTransport` to the code that publishes (plugs and joins, the
sender) and reads back the messages, built exactly as a broker would receive them, with no
broker, worker or subprocess. ``refuse`` makes the next sends fail, as a broker that is
away does, to exercise retries and dead letters.
"""

from __future__ import annotations

from shellflow.engine.transport.message import Origin, TaskMessage


class StubTransport:
    """Records messages instead of sending them."""

    unavailable: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, broker_url: str = "memory://") -> None:
        self.broker_url = broker_url
        self.messages: list[TaskMessage] = []
        self.refusals = 0  # how many of the next sends fail

    def origin(self) -> Origin:
        return Origin(reply_to="stub-reply")

    def send(self, message: TaskMessage) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise ConnectionRefusedError("stub broker refused the message")
        self.messages.append(message)

    def refuse(self, times: int = 1) -> None:
        self.refusals = times

    def to(self, socket: str) -> list[TaskMessage]:
        """The messages sent to one socket, oldest first."""
        return [m for m in self.messages if m.name == socket]
