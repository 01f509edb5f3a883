"""Comparing a compose file with the database: the changes ``up``, ``down`` and ``diff`` show.

A :class:`Change` adds, changes or removes one object; :func:`plan` and :func:`plan_down`
list them in the order they can be made (plugs first, then additions in dependency order,
then removals), and :func:`summary` counts them in the line each command ends with.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from shellflow.model.compose_format import FIELDS, KINDS, Spec, current
from shellflow.model.store import MODELS, Store
from shellflow.redact import mask_text


@dataclass(frozen=True)
class Change:
    """What applying a file does to one object; ``fields`` holds (old, new) per field."""

    action: str  # add | change | remove
    kind: str
    name: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    where: str = ""

    def describe(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-"}[self.action]
        text = f"{sign} {self.kind} {self.name}"
        if self.action == "add" and self.fields:
            text += " (" + ", ".join(f"{k}: {_show(new)}" for k, (_, new) in self.fields.items())
            text += ")"
        elif self.action == "change":
            text += ": " + ", ".join(
                f"{k}: {_show(old)} -> {_show(new)}" for k, (old, new) in self.fields.items()
            )
        return text


def _show(value: Any) -> str:
    if isinstance(value, str):  # a git URL's token never reaches a plan's text
        value = mask_text(value)
    if isinstance(value, str) and value and value.isprintable() and "," not in value:
        return value
    return json.dumps(value)


def summary(changes: Iterable[Change]) -> str:
    """The one line ``up``, ``down`` and ``diff`` end with (on stderr)."""
    counts = Counter(change.action for change in changes)
    if not counts:
        return "nothing to change"
    return f"{counts['add']} added, {counts['change']} changed, {counts['remove']} removed"


def plan(store: Store, spec: Spec, *, prune: bool = False) -> list[Change]:
    """The changes ``up`` makes, in the order it makes them."""
    changes: list[Change] = []
    for declared in spec.objects:
        obj = store.find(declared.kind, declared.name)
        if obj is None:
            defaults = {f.name: f.default for f in FIELDS[declared.kind]}
            added = {k: (None, v) for k, v in declared.values.items() if v != defaults[k]}
            changes.append(Change("add", declared.kind, declared.name, added, declared.where))
            continue
        old = current(declared.kind, obj)
        differ = {k: (old[k], v) for k, v in declared.values.items() if old[k] != v}
        if differ:
            changes.append(Change("change", declared.kind, declared.name, differ, declared.where))
    if prune:
        for kind in KINDS:
            model: Any = MODELS[kind]
            declared_names = set(spec.names(kind))
            for name in store.session.scalars(select(model.name).order_by(model.name)):
                if name not in declared_names:
                    changes.append(Change("remove", kind, name))
    return _ordered(changes)


def plan_down(store: Store, spec: Spec) -> list[Change]:
    """The changes ``down`` makes: remove each declared object that exists."""
    changes = [
        Change("remove", o.kind, o.name, where=o.where)
        for o in spec.objects
        if store.find(o.kind, o.name) is not None
    ]
    return _ordered(changes)


def _ordered(changes: list[Change]) -> list[Change]:
    """Plugs go first (they hold sockets), then additions in dependency order, then the
    removal of sockets, processors and queues once nothing of the file needs them."""
    rank = {kind: index for index, kind in enumerate(KINDS)}

    def key(change: Change) -> tuple[int, int]:
        if change.action == "remove":
            return (0, 0) if change.kind == "plug" else (2, -rank[change.kind])
        return (1, rank[change.kind])

    return sorted(changes, key=key)
