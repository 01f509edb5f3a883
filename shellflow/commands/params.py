"""Parameter types that refuse, as usage errors (exit 2), the values click lets through.

click's ``STRING`` takes an empty string, ``IntRange(min=1)`` any integer however large (the
database then raises ``OverflowError``), ``FloatRange(min=0)`` takes ``nan`` (every
comparison with it is false) and ``inf``, and ``BOOL`` reads an empty string as false. A
user typing any of these made a mistake; these types say so before a command starts.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

# The largest whole number every column holding one accepts (PostgreSQL's INTEGER).
INT_MAX = 2**31 - 1
# The longest wait a --timeout may ask for: a year, which every clock and socket call takes.
SECONDS_MAX = 365 * 24 * 3600.0


class Text(click.ParamType):
    """Text that is not empty nor only blanks: a name, a module, a call id; at most
    ``longest`` characters, none of them a control character, when it says so."""

    name = "text"

    def __init__(self, longest: int | None = None) -> None:
        self.longest = longest

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("must not be empty", param, ctx)
        if self.longest is not None and isinstance(value, str):
            if len(value) > self.longest:
                self.fail(f"at most {self.longest} characters, got {len(value)}", param, ctx)
            if not value.isprintable():
                self.fail(f"{value!r} holds control characters", param, ctx)
        return value


TEXT = Text()
FLOW_ID = Text(longest=36)  # a flow run's id is kept in a 36-character column (a UUID's)


def whole(low: int = 0, high: int = INT_MAX) -> click.IntRange:
    """A whole number from ``low`` to ``high`` (at most what the database can hold)."""
    return click.IntRange(min=low, max=high)


class Seconds(click.FloatRange):
    """A duration in seconds: finite, not negative, at most :data:`SECONDS_MAX`."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, max=SECONDS_MAX)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isnan(number):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return super().convert(number, param, ctx)


SECONDS = Seconds()


class StrictBool(click.types.BoolParamType):
    """A boolean that must be written (``true``/``false``, ``yes``/``no``, ``1``/``0``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("must be true or false, not empty", param, ctx)
        return super().convert(value, param, ctx)


STRICT_BOOL = StrictBool()


class Place(click.Path):
    """A path that names something: an empty one would silently mean the current folder."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("must not be empty", param, ctx)
        return super().convert(value, param, ctx)


LOGLEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> datetime:
    """``--since``: an ISO time (UTC unless it says otherwise) or a duration back from now
    (``90s``, ``15m``, ``2h``, ``1d``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    try:
        if match:
            return datetime.now(UTC) - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        value = datetime.fromisoformat(text)
    except OverflowError as exc:  # 10000000000d: before the first day of the calendar
        raise click.BadParameter(f"{text!r} is too far back", param_hint="--since") from exc
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO time nor a duration like 15m", param_hint="--since"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
