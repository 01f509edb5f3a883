"""When a cron line fires next, looked for no further than :data:`HORIZON_YEARS` ahead.

A line can be valid field by field and still never fire: ``0 0 31 2 *`` (31 February),
``0 0 31 4,6,9,11 *``. croniter then searches 50 years and raises, and a scheduler that
asks it at tick time fails there. So the same search, with the same horizon, is made when
a line is stored (``shellflow.model.checks.check_cron``: ``flow add|update socket --cron``,
compose files, the Python API) and when the scheduler computes a due time
(``shellflow.engine.fleet.scheduler``): a line refused by neither is one that fires.

The horizon is 8 years, the longest gap between two times of any line that fires at all
(29 February skips 2100: 2096 to 2104), so a line is refused exactly when it never fires.
"""

from __future__ import annotations

from datetime import UTC, datetime

HORIZON_YEARS = 8


class NoNextTime(ValueError):
    """The line matches no time within :data:`HORIZON_YEARS` after the moment asked."""


def next_time(line: str, after: float) -> float:
    """The first time (epoch seconds) strictly after ``after`` that ``line`` matches.

    :class:`NoNextTime` when there is none within the horizon; croniter's own errors (a
    line it cannot read) are left to the caller, which has checked the line before.
    """
    from croniter import CroniterBadDateError, croniter

    start = datetime.fromtimestamp(after, UTC)
    try:
        found = croniter(line, start, max_years_between_matches=HORIZON_YEARS).get_next(float)
    except CroniterBadDateError:
        raise NoNextTime(
            f"cron line {line[:100]!r} never fires: no time matches it within {HORIZON_YEARS} years"
        ) from None
    return float(found)
