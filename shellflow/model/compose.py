"""Compose files: a network (queues, processors, sockets, plugs) declared in YAML.

A compose file names each object once, under its kind's section, with the same fields the
``flow add`` options set (schedules are a socket's ``interval`` or ``cron``)::

    version: 1
    queues:
      pyfi.queue1: {type: direct}
    processors:
      proc1: {gitrepo: https://github.com/radiantone/pyfi-processors,
              module: pyfi.processors.sample, hostname: localhost, concurrency: 5}
    sockets:
      pyfi.processors.sample.do_this: {queue: pyfi.queue1, processor: proc1, task: do_this}

An object the file declares is described whole: a field left out takes its default, so
deleting a line from the file and running ``up`` again resets that field. Objects the file
does not declare are left alone (unless ``prune``). Every write goes through
:class:`shellflow.model.store.Store`, the same code and checks as ``flow add|update|delete``,
inside the caller's one transaction: a failure anywhere leaves the database as it was.

The whole file is checked before the database is touched: YAML syntax, known sections and
fields, types, choices, names and cron lines, each error with its ``file:line``. References
(a socket's queue and processor, a plug's sockets) may name objects of the file or of the
database; a missing one is "not found" (exit 3), as with ``flow add``.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from shellflow.errors import ShellflowError, UsageError
from shellflow.model.checks import check_cron, check_values
from shellflow.model.network import PLUG_TYPES, QUEUE_TYPES
from shellflow.model.store import MODELS, Store

VERSION = 1
KINDS = ("queue", "processor", "socket", "plug")  # the order objects are added in
SECTIONS = {f"{kind}s": kind for kind in KINDS}
HEADER = (
    "# A shellflow network: 'flow compose up FILE' applies it, 'flow compose diff FILE'\n"
    "# shows what that would change (see 'flow compose --help').\n"
)


@dataclass(frozen=True)
class Field:
    """One field of a declared object: its name in the file and its key in the store."""

    name: str
    key: str
    type: type
    default: Any = None
    required: bool = False
    minimum: int | None = None
    choices: tuple[str, ...] = ()


def _f(name: str, kind: type = str, key: str = "", **extra: Any) -> Field:
    return Field(name, key or name, kind, **extra)


FIELDS: dict[str, tuple[Field, ...]] = {
    "queue": (
        _f("type", key="qtype", default="direct", choices=QUEUE_TYPES),
        _f("durable", bool, default=True),
        _f("message_ttl", int, minimum=0),
        _f("expires", int, minimum=0),
        _f("max_length", int, default=-1, minimum=-1),
    ),
    "processor": (
        _f("gitrepo", required=True),
        _f("module", required=True),
        _f("branch"),
        _f("commit"),
        _f("tag", key="gittag"),
        _f("modulepath"),
        _f("requirements"),
        _f("hostname"),
        _f("concurrency", int, default=1, minimum=1),
        _f("workers", int, minimum=1),
        _f("retries", int, minimum=0),
        _f("retry_delay", int, key="retrydelay", minimum=0),
        _f("time_limit", int, key="timelimit", minimum=1),
        _f("beat", bool, default=False),
        _f("deploy", bool, default=True),
        _f("api", bool, key="hasapi", default=False),
        _f("endpoint"),
        _f("description"),
    ),
    "socket": (
        _f("queue", required=True),
        _f("processor", required=True),
        _f("task", required=True),
        _f("interval", int, minimum=1),
        _f("cron"),
        _f("wait", bool, default=False),
        _f("description"),
    ),
    "plug": (
        _f("source", required=True),
        _f("target", required=True),
        _f("argument"),
        _f("queue", required=True),
        _f("type", default="RESULT", choices=PLUG_TYPES),
        _f("description"),
    ),
}
# Fields naming another object: the store resolves them, and they are read back by name.
REFERENCES = {"queue", "processor", "source", "target"}


class ComposeError(UsageError):
    """An invalid compose file (exit 2): every problem found, the first one in full."""

    def __init__(self, problems: list[str]) -> None:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)
        self.problems = problems


@dataclass(frozen=True)
class Declared:
    """One object of the file, every field filled (defaults for those left out)."""

    kind: str
    name: str
    values: dict[str, Any]
    where: str


@dataclass(frozen=True)
class Spec:
    source: str
    objects: tuple[Declared, ...]

    def names(self, kind: str) -> list[str]:
        return [o.name for o in self.objects if o.kind == kind]


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
    if isinstance(value, str) and value and value.isprintable() and "," not in value:
        return value
    return json.dumps(value)


def summary(changes: Iterable[Change]) -> str:
    """The one line ``up``, ``down`` and ``diff`` end with (on stderr)."""
    counts = Counter(change.action for change in changes)
    if not counts:
        return "nothing to change"
    return f"{counts['add']} added, {counts['change']} changed, {counts['remove']} removed"


# -- reading and checking a file ----------------------------------------------------------
class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers the line of each of its keys (1-based)."""

    line: int = 0
    lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    """The safe loader, with key lines kept and duplicate or non-text keys refused."""


def _construct_mapping(loader: Any, node: Any) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} must be text (quote it)", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} appears twice in one mapping", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(text: str, source: str, base: Path | None = None) -> Spec:
    """Parse and check a compose file; :class:`ComposeError` lists what is wrong.

    A processor's ``gitrepo`` written as a relative path (``.``, ``./x``, ``../x``) is
    taken relative to ``base``, the file's folder, as docker compose does with its paths:
    the file and the repository travel together.
    """
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ComposeError([f"{where}: {' '.join(str(problem).split())}"]) from None
    return _Checker(source, base or Path.cwd()).check(document)


class _Checker:
    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base
        self.problems: list[str] = []

    def at(self, line: int) -> str:
        return f"{self.source}:{line}" if line else self.source

    def problem(self, line: int, text: str) -> None:
        self.problems.append(f"{self.at(line)}: {text}")

    def check(self, document: Any) -> Spec:
        if document is None:
            document = _Mapping()
        if not isinstance(document, _Mapping):
            raise ComposeError([f"{self.source}:1: expected a mapping of sections ({_known()})"])
        objects: list[Declared] = []
        version = document.get("version", VERSION)
        if version != VERSION:
            self.problem(document.lines.get("version", 0), f"version must be {VERSION}")
        for section, body in document.items():
            line = document.lines[section]
            if section == "version":
                continue
            if section not in SECTIONS:
                self.problem(line, f"unknown section {section!r}{_close(section, SECTIONS)}")
                continue
            if body is None:
                continue
            if not isinstance(body, _Mapping):
                self.problem(line, f"{section}: expected a mapping of names to fields")
                continue
            for name, fields in body.items():
                found = self.check_object(SECTIONS[section], name, fields, body.lines[name])
                if found is not None:
                    objects.append(found)
        if self.problems:
            raise ComposeError(self.problems)
        order = {kind: index for index, kind in enumerate(KINDS)}
        objects.sort(key=lambda o: order[o.kind])  # stable: file order within a kind
        return Spec(self.source, tuple(objects))

    def check_object(self, kind: str, name: str, body: Any, line: int) -> Declared | None:
        label = f"{kind} {name!r}"
        if body is None:
            body = _Mapping()
        if not isinstance(body, _Mapping):
            self.problem(line, f"{label}: expected a mapping of fields")
            return None
        known = {f.name: f for f in FIELDS[kind]}
        values: dict[str, Any] = {}
        before = len(self.problems)
        for key, value in body.items():
            spot = body.lines[key]
            spec = known.get(key)
            if spec is None:
                self.problem(spot, f"{label}: unknown field {key!r}{_close(key, known)}")
                continue
            checked = self.check_value(spec, value, spot, label)
            if checked is not None:
                values[key] = checked
        for spec in known.values():
            if spec.required and _missing(body, spec.name):
                self.problem(line, f"{label}: missing field {spec.name!r}")
        if len(self.problems) > before:
            return None
        full = {f.name: values.get(f.name, f.default) for f in FIELDS[kind]}
        if kind == "processor" and _relative_path(full["gitrepo"]):
            full["gitrepo"] = str((self.base / full["gitrepo"]).resolve())
        try:
            check_values(kind, MODELS[kind], {"name": name, **store_values(kind, full)})
            self.check_rules(kind, full)
        except UsageError as exc:
            self.problem(line, f"{label}: {exc.message}")
            return None
        return Declared(kind, name, full, self.at(line))

    def check_value(self, spec: Field, value: Any, line: int, label: str) -> Any:
        if value is None:
            return None  # null: the default, as if left out
        wrong = not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool))
        if wrong:
            hint = " (quote it)" if spec.type is str else ""
            self.problem(
                line, f"{label}: {spec.name} must be {_type_name(spec.type)}, got {value!r}{hint}"
            )
            return None
        if spec.choices:
            normal = value.upper() if spec.choices == PLUG_TYPES else value
            if normal not in spec.choices:
                self.problem(line, f"{label}: {spec.name} must be one of {', '.join(spec.choices)}")
                return None
            return normal
        if spec.minimum is not None and value < spec.minimum:
            self.problem(line, f"{label}: {spec.name} must be at least {spec.minimum}")
            return None
        return value

    @staticmethod
    def check_rules(kind: str, values: Mapping[str, Any]) -> None:
        """What the store would refuse, found before the database is opened."""
        if kind == "socket":
            if values["interval"] is not None and values["cron"] is not None:
                raise UsageError("give either interval or cron, not both")
            if values["cron"] is not None:
                check_cron(values["cron"])
            if not values["task"].isidentifier():
                raise UsageError(f"task {values['task']!r} is not a Python function name")
        if kind == "plug" and values["source"] == values["target"]:
            raise UsageError("a plug cannot connect a socket to itself")


def _relative_path(text: str) -> bool:
    return text in (".", "..") or text.startswith(("./", "../"))


def _missing(body: Mapping[str, Any], key: str) -> bool:
    return body.get(key) is None


def _type_name(kind: type) -> str:
    return {str: "text", int: "a whole number", bool: "true or false"}[kind]


def _known() -> str:
    return ", ".join(["version", *SECTIONS])


def _close(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def store_values(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The file's fields as the store's value keys (``tag`` -> ``gittag``), nulls left out."""
    return {f.key: values[f.name] for f in FIELDS[kind] if values.get(f.name) is not None}


# -- comparing with the database -----------------------------------------------------------
def current(kind: str, obj: Any) -> dict[str, Any]:
    """A stored object's fields as a compose file writes them."""
    out: dict[str, Any] = {}
    for spec in FIELDS[kind]:
        if spec.name == "task":
            value = obj.task.function if obj.task is not None else None
        elif kind == "plug" and spec.name == "argument":
            value = obj.argument.name if obj.argument is not None else None
        elif spec.name in REFERENCES:
            target = getattr(obj, spec.key)
            value = target.name if target is not None else None
        else:
            value = getattr(obj, spec.key)
        out[spec.name] = value
    return out


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


# -- applying ------------------------------------------------------------------------------
Authorize = Callable[[str, str, str], None]  # (action, kind, name); raises when not allowed


def apply(
    store: Store, changes: list[Change], authorize: Authorize, *, cascade: bool = False
) -> list[str]:
    """Make the changes through the store; returns what was deleted (cascades included)."""
    for change in changes:
        authorize(change.action, change.kind, change.name)
    deleted: list[str] = []
    for change in changes:
        try:
            if change.action == "add":
                news = {k: new for k, (_, new) in change.fields.items()}
                store.add(change.kind, {"name": change.name, **store_values(change.kind, news)})
            elif change.action == "change":
                _change(store, change)
            else:
                deleted += store.delete(change.kind, change.name, cascade=cascade)
        except ShellflowError as exc:
            if change.where:
                exc.message = f"{change.where}: {change.kind} {change.name!r}: {exc.message}"
            raise
    return deleted


def _change(store: Store, change: Change) -> None:
    news = {k: new for k, (_, new) in change.fields.items()}
    setting = store_values(change.kind, news)
    obj = store.update(change.kind, change.name, setting) if setting else None
    cleared = [k for k, v in news.items() if v is None]
    if not cleared:
        return
    obj = obj if obj is not None else store.get(change.kind, change.name)
    keys = {f.name: f.key for f in FIELDS[change.kind]}
    for name in cleared:
        setattr(obj, keys[name], None)  # only optional fields can be null (see _Checker)
    if change.kind == "socket" and obj.interval is None and obj.cron is None:
        obj.schedule_type, obj.scheduled = None, False
    store.session.flush()


# -- writing the stored network ------------------------------------------------------------
def export(store: Store) -> str:
    """The stored queues, processors, sockets and plugs as a compose file, by name.

    Fields at their default are left out, so the text is the shortest file that makes the
    same network; exporting it again after an ``up`` gives the same text.
    """
    document: dict[str, Any] = {"version": VERSION}
    for kind in KINDS:
        model: Any = MODELS[kind]
        defaults = {f.name: f.default for f in FIELDS[kind]}
        section = {}
        for obj in store.session.scalars(select(model).order_by(model.name)):
            values = current(kind, obj)
            section[obj.name] = {k: v for k, v in values.items() if v != defaults[k]}
        if section:
            document[f"{kind}s"] = section
    body = yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return HEADER + body
