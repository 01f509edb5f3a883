"""What an autoscaling worker reads and writes in the model database: its bounds, and what
it runs.

A worker serving one deployment of a processor placed whole keeps the processor's
``--min-workers``/``--max-workers``. One serving a *share* of a processor spread over
several nodes (``shellflow.engine.fleet.spread``; the agent passes ``--deployment ID``)
keeps its part of them (:func:`shellflow.model.shares.apportion` over the shares' CPUs, in
deployment name order, the same on every node), so that all the shares' processes together
never exceed ``--max-workers``. Its reports go to its deployment row, and the processor row
holds their sums: ``flow ls processor --json`` shows the fleet's total and each share.
"""

from __future__ import annotations

from shellflow.config import Settings
from shellflow.model.listing import reader, writer
from shellflow.model.shares import apportion


def bounds(
    settings: Settings, processor: str, deployment: str | None = None
) -> tuple[int, int] | None:
    """The (min_workers, max_workers) of the processor, or of its share ``deployment``; None
    when it does not autoscale."""
    with reader(settings.db) as conn:
        rows = conn.query(
            "SELECT id, min_workers, max_workers FROM processor WHERE name = ?", [processor]
        )
        if not rows or rows[0][1] is None or rows[0][2] is None:
            return None
        processor_id, minimum, maximum = rows[0][0], int(rows[0][1]), int(rows[0][2])
        shares = (
            conn.query(
                "SELECT id, cpus FROM deployment WHERE processor_id = ? ORDER BY name",
                [processor_id],
            )
            if deployment
            else []
        )
    ids = [str(r[0]) for r in shares]
    if deployment not in ids or len(ids) < 2:
        return minimum, maximum
    weights = [max(1, int(r[1] or 1)) for r in shares]
    mine = ids.index(str(deployment))
    top = apportion(maximum, weights)[mine]
    return min(apportion(minimum, weights)[mine], top), top


# The processor row: the sums of its shares, and the last reason (named by its share when
# there are several: "P@n2: worker stopped" while P@n1 runs on).
_SUMS = (
    "UPDATE processor SET"
    " workers_current = (SELECT SUM(workers_current) FROM deployment d"
    " WHERE d.processor_id = processor.id),"
    " workers_desired = (SELECT SUM(workers_desired) FROM deployment d"
    " WHERE d.processor_id = processor.id),"
    " scale_reason = CASE WHEN (SELECT COUNT(*) FROM deployment d"
    " WHERE d.processor_id = processor.id) > 1"
    " THEN (SELECT name FROM deployment WHERE id = ?) || ': ' || ? ELSE ? END"
    " WHERE name = ?"
)


def report(
    settings: Settings, processor: str, deployment: str | None,
    values: tuple[int | None, int | None, str],
) -> None:  # fmt: skip
    """Record (workers_current, workers_desired, scale_reason): in the deployment row and the
    processor's sums when serving a deployment, in the processor row otherwise."""
    with writer(settings.db) as conn:
        if deployment is None:
            conn.execute(
                "UPDATE processor SET workers_current = ?, workers_desired = ?,"
                " scale_reason = ? WHERE name = ?", [*values, processor],
            )  # fmt: skip
            return
        conn.execute(
            "UPDATE deployment SET workers_current = ?, workers_desired = ?, scale_reason = ?"
            " WHERE id = ?", [*values, deployment],
        )  # fmt: skip
        conn.execute(_SUMS, [deployment, values[2], values[2], processor])
