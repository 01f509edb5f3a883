"""Hostile names and values written straight into a database, past every check of shellflow,
as a database filled before the name rule (or by hand) may hold them."""

from __future__ import annotations

from typing import Any

# Each would be code, a second candidate, a second statement or a terminal command if an
# output passed it on raw; the file "pwned" appears in the current folder if one ever runs.
SHELL_NAMES = [
    "a$(touch pwned)",
    "b`touch pwned`",
    "c;touch pwned",
    "d'$(touch pwned)'",
    "e\ntouch pwned",
    "f\tinjected",
    'g"];\nx [label="pwned"];',
    "-rf",
    "h\x1b]52;c;cHduZWQ=\x07",
]


def write(url: str, statement: str, **params: Any) -> None:
    """Run one raw SQL statement and commit it (SQLAlchemy core, none of shellflow's code)."""
    from sqlalchemy import create_engine, text

    from shellflow.model.urls import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()
