"""Applying planned changes through the store, the same code and checks as ``flow add``.

Every change is authorised before the first is made, and all run inside the caller's one
transaction: a failure anywhere leaves the database as it was, and its message names the
file line of the object that failed.
"""

from __future__ import annotations

from collections.abc import Callable

from shellflow.errors import ShellflowError
from shellflow.model.audit import snapshot
from shellflow.model.compose_format import FIELDS, store_values
from shellflow.model.compose_plan import Change
from shellflow.model.store import SOURCE_KEYS, Store

Authorize = Callable[[str, str, str], None]  # (action, kind, name); raises when not allowed


def apply(
    store: Store, changes: list[Change], authorize: Authorize, *, cascade: bool = False,
    force: bool = False,
) -> list[str]:  # fmt: skip
    """Make the changes through the store; returns what was deleted (cascades included).

    A change that would strand calls pending or running is refused unless ``force``, as
    ``flow delete|update`` refuse it (``shellflow.model.busy``)."""
    for change in changes:
        authorize(change.action, change.kind, change.name)
    deleted: list[str] = []
    for change in changes:
        try:
            if change.action == "add":
                news = {k: new for k, (_, new) in change.fields.items()}
                store.add(change.kind, {"name": change.name, **store_values(change.kind, news)})
            elif change.action == "change":
                _change(store, change, force)
            else:
                deleted += store.delete(change.kind, change.name, cascade=cascade, force=force)
        except ShellflowError as exc:
            if change.where:
                exc.message = f"{change.where}: {change.kind} {change.name!r}: {exc.message}"
            raise
    return deleted


def _change(store: Store, change: Change, force: bool) -> None:
    news = {k: new for k, (_, new) in change.fields.items()}
    setting = store_values(change.kind, news)
    obj = store.update(change.kind, change.name, setting, force=force) if setting else None
    cleared = [k for k, v in news.items() if v is None]
    if not cleared:
        return
    obj = obj if obj is not None else store.get(change.kind, change.name)
    before = snapshot(obj)
    keys = {f.name: f.key for f in FIELDS[change.kind]}
    for name in cleared:
        setattr(obj, keys[name], None)  # only optional fields can be null (see compose_load)
    if change.kind == "processor" and {keys[n] for n in cleared} & set(SOURCE_KEYS):
        obj.deployed_commit = None  # another branch, tag or commit: resolved again
    if change.kind == "socket" and obj.interval is None and obj.cron is None:
        obj.schedule_type, obj.scheduled = None, False
    store.session.flush()
    store.audit("update", change.kind, obj.name, before, snapshot(obj))  # the fields cleared
