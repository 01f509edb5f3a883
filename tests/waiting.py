"""The one way tests wait for what other processes do: poll, and fail loudly at the deadline.

A wait that returned quietly on time-out made a stall cost its whole timeout and then fail
with a misleading message far from its cause; this one names what it waited for and the
last value it saw.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def poll(
    check: Callable[[], T],
    timeout: float = 60,
    what: str | Callable[[], str] = "a condition",
    every: float = 0.05,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    At the deadline, raise AssertionError naming ``what`` (a string, or a function that
    describes the state then) and ``check``'s last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"waited {timeout:g} s for {described} (last check: {value!r})")
        time.sleep(every)


def poll_value(
    read: Callable[[], Any], expect: Any, timeout: float = 60, what: str = "a value"
) -> Any:
    """Call ``read`` until it returns ``expect``; fail with the last value at the deadline."""
    last: list[Any] = []

    def check() -> bool:
        last[:] = [read()]
        return bool(last[0] == expect)

    poll(check, timeout, lambda: f"{what} to be {expect!r}, it was {last[0]!r}")
    return last[0]


def signal_and_wait(
    process: subprocess.Popen[Any] | None,
    signum: int,
    timeout: float,
    kill: Callable[[], None] | None = None,
) -> None:
    """Send ``signum`` to a server this test started (by its pid) and wait for it to end;
    past ``timeout``, ``kill`` it (by default SIGKILL to the process alone)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if kill is not None:
            kill()
        else:
            process.kill()
        process.wait()
