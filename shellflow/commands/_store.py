"""A Store bound to a committed-or-rolled-back session (imports the ORM, so kept apart)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shellflow.model.db import session_scope
from shellflow.model.store import Store


@contextmanager
def store_scope(
    url: str, owner: str, repos_allow: tuple[str, ...] | None = None
) -> Iterator[Store]:
    with session_scope(url) as session:
        yield Store(session, owner, repos_allow)
