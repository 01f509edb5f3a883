"""A processor's autoscaling bounds: checked once, wherever they are set.

``flow add|update processor --min-workers N --max-workers M`` and a compose file's
``min_workers``/``max_workers``. ``concurrency`` (``-c``) stays what the placement reserves
on a node, the CPUs the processor may use: the pool grows and shrinks inside it, so
``1 <= min_workers <= max_workers <= concurrency``. Both bounds or neither: without them the
pool is fixed at ``concurrency`` processes, as before autoscaling.
"""

from __future__ import annotations

from typing import Any

from shellflow.errors import UsageError


def bounds_problem(minimum: Any, maximum: Any, concurrency: Any) -> str | None:
    """Why these bounds cannot hold, or None (both None: autoscaling off)."""
    if minimum is None and maximum is None:
        return None
    if minimum is None or maximum is None:
        return "give both --min-workers and --max-workers (or neither: a fixed pool of -c)"
    if minimum < 1:
        return f"--min-workers {minimum}: at least 1"
    if minimum > maximum:
        return f"--min-workers {minimum} is over --max-workers {maximum}"
    cpus = concurrency or 1
    if maximum > cpus:
        return (
            f"--max-workers {maximum} is over the processor's {cpus} CPUs"
            f" (-c/--concurrency, what its node reserves): raise -c to {maximum} too"
        )
    return None


def check(processor: Any) -> None:
    """Refuse (exit 2) a processor whose bounds do not hold, as changed."""
    found = bounds_problem(processor.min_workers, processor.max_workers, processor.concurrency)
    if found is not None:
        raise UsageError(found)
