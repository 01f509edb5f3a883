"""Functions that misbehave on purpose, for the reliability tests (plain functions, no imports
from shellflow). State that must outlive a worker process lives in a file named by the call.
"""

import os
import signal
import time


def _bump(path):
    """Add one to the counter in ``path`` and return the new count."""
    try:
        with open(path) as handle:
            count = int(handle.read() or 0)
    except FileNotFoundError:
        count = 0
    count += 1
    with open(path, "w") as handle:
        handle.write(str(count))
    return count


def flaky(path, failures=2):
    """Raise on the first ``failures`` calls counted in ``path``, then return the count."""
    count = _bump(path)
    if count <= failures:
        raise RuntimeError(f"failure {count} of {failures}")
    return count


def slow(value, seconds=0.05):
    """Return ``value`` after ``seconds``: keeps calls in flight."""
    time.sleep(seconds)
    return value


def crash(path, until=None):
    """Count the attempt in ``path``, then kill the worker process running it (a poison call);
    with ``until``, return the count once it is past ``until`` (a call that heals)."""
    count = _bump(path)
    if until is not None and count > until:
        return count
    os.kill(os.getpid(), signal.SIGKILL)


def echo(value):
    return value
