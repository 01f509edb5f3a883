"""What a stream is asked to do and how it ended: :class:`Options`, :class:`Halt`, :class:`Summary`.

The parts of a stream (``stream_input``, ``stream_results``, ``stream_output``) share these;
:mod:`shellflow.client.stream` runs them. No click, no Celery: the command imports this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shellflow.client.stream_outage import RECONNECT_TIMEOUT
from shellflow.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from shellflow.client.stream_input import BadRecord

PROGRESS_EVERY = 0.25  # seconds between progress line updates (stderr on a TTY only)
# Default calls in flight per CPU of the socket's workers: a worker process that finishes a
# call finds its next ones queued instead of idling while the result travels back and the
# next call is sent (measured: 1 per CPU ran at about half the throughput of 4).
JOBS_PER_CPU = 4


@dataclass(frozen=True)
class Halt:
    """When to stop after failures, as GNU parallel's ``--halt``.

    ``never``: run every record. ``soon,fail=N``: after N failed calls start no more, let
    the unfinished ones end and write them. ``now,fail=N``: after N failed calls cancel the
    unfinished ones and stop at once.
    """

    when: str = "never"
    fails: int = 0

    @classmethod
    def parse(cls, text: str) -> Halt:
        when, _, rest = text.partition(",")
        if when == "never" and not rest:
            return cls()
        if when in ("soon", "now") and rest.startswith("fail="):
            count = rest[len("fail=") :]
            if count.isdigit() and int(count) > 0:
                return cls(when, int(count))
        raise UsageError(f"--halt {text!r}: expected never, soon,fail=N or now,fail=N")

    def reached(self, failed: int) -> bool:
        return self.when != "never" and failed >= self.fails


@dataclass
class Options:
    socket: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    jobs: int | None = None  # None: JOBS_PER_CPU times the socket's total concurrency
    nul: bool = False
    json_lines: bool = False
    ordered: bool = True
    halt: Halt = field(default_factory=Halt)
    timeout: float | None = None  # seconds from a call's send to its result
    flow: str | None = None
    parent: str | None = None
    progress: bool = False
    reconnect_timeout: float = RECONNECT_TIMEOUT  # seconds a lost service may take


@dataclass
class Summary:
    calls: int = 0
    ok: int = 0
    failed: int = 0
    timed_out: int = 0
    seconds: float = 0.0
    halted: bool = False
    reader_gone: bool = False
    bad_record: BadRecord | None = None

    def line(self) -> str:
        line = f"{self.calls} calls, {self.ok} ok, {self.failed} failed in {self.seconds:.2f} s"
        if self.timed_out:
            line += f" ({self.timed_out} timed out)"
        if self.halted:
            line += "; halted"
        return line

    @property
    def exit_code(self) -> ExitCode:
        if self.reader_gone:
            return ExitCode.OK
        if self.bad_record is not None:
            return ExitCode.USAGE
        if self.failed > self.timed_out:
            return ExitCode.CALL_FAILED
        if self.timed_out:
            return ExitCode.TIMED_OUT
        return ExitCode.OK
