"""Reading a compose file: YAML parsed with each key's line, then every field checked.

The whole file is checked before the database is touched: YAML syntax, known sections and
fields, types, choices, names and cron lines, each error with its ``file:line``; all the
problems found are raised together in one :class:`ComposeError`.

The parser is bounded, so no file can cost much more than a large honest one: at most
:data:`MAX_BYTES` (1 MiB), nested at most :data:`MAX_DEPTH` levels, and holding at most
:data:`MAX_NODES` values, counted as they are parsed and again with every alias counted as
the values it repeats (a "billion laughs" file of nested aliases is refused before anything
walks it). PyYAML's pure-Python parser holds a few hundred bytes per value: the bound keeps
the worst file near 200 MB and a few seconds. A user's value quoted in an error is cut
short (:func:`shown`), never written out whole.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from shellflow.errors import UsageError
from shellflow.model.checks import check_cron, check_values
from shellflow.model.compose_format import (
    FIELDS,
    KINDS,
    SECTIONS,
    VERSION,
    ComposeError,
    Declared,
    Field,
    Spec,
    store_values,
)
from shellflow.model.compose_secrets import fill
from shellflow.model.network import PLUG_TYPES
from shellflow.model.store import MODELS


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers the line of each of its keys (1-based)."""

    line: int = 0
    lines: dict[str, int]


MAX_BYTES = 1 << 20  # a compose file's size bound: 1 MiB
MAX_DEPTH = 32  # nesting of sequences and mappings (a valid file uses 3)
MAX_NODES = 250_000  # values, aliases counted as what they repeat (a 1 MiB network: < 100 000)
MAX_INT_DIGITS = 100  # a number's characters (a column's range is the store's check)

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = 4
_SHORT.maxlevel = 2


def shown(value: Any) -> str:
    """A user's value as an error quotes it: its repr, cut short whatever its size."""
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Loader(yaml.SafeLoader):
    """The safe loader, with key lines kept, duplicate or non-text keys refused, and its
    depth and alias expansion bounded (:data:`MAX_DEPTH`, :data:`MAX_NODES`)."""

    depth = 0
    nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        self.nodes += 1  # as they come: a flat file of too many values stops there
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )  # fmt: skip
            if self.nodes > MAX_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_NODES} values", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """A value YAML's resolver took for a date, number... that is none (2026-13-45)
        is a YAML error at its line, not a Python one."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown(node.value)}: {exc}", node.start_mark
            ) from None

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose values, each alias counted as the values it repeats, are
    more than :data:`MAX_NODES`, or where an alias repeats a node that contains it.

    Counted on the composed nodes, where an alias is the one node it names, each node
    once (its count remembered): linear in the file, however large the expansion. No
    recursion: the alias chains that make the expansion also make depth.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                raise yaml.composer.ComposerError(
                    None, None,
                    f"aliases expand to more than {MAX_NODES} values: refused", node.start_mark,
                )  # fmt: skip
            continue
        if key in sizes:
            continue
        if key in open_:
            raise yaml.composer.ComposerError(
                None, None, "an alias repeats a node that contains it", node.start_mark
            )
        open_.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _construct_mapping(loader: Any, node: Any) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {shown(key)} must be text (quote it)", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown(key)} appears twice in one mapping", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_int(loader: Any, node: Any) -> int:
    """YAML's int, refused past MAX_INT_DIGITS digits (Python's own limit, 4300, would be
    a ValueError outside YAML's errors; no field takes a number that long anyway)."""
    if len(str(node.value)) > MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number of {len(str(node.value))} characters: too long",
            node.start_mark,
        )  # fmt: skip
    return int(yaml.SafeLoader.construct_yaml_int(loader, node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load(text: str, source: str, base: Path | None = None) -> Spec:
    """Parse and check a compose file; :class:`ComposeError` lists what is wrong.

    A processor's ``gitrepo`` written as a relative path (``.``, ``./x``, ``../x``) is
    taken relative to ``base``, the file's folder, as docker compose does with its paths:
    the file and the repository travel together.
    """
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ComposeError([too_large(source)])
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        problem = problem if len(problem) <= 200 else problem[:197] + "..."  # may quote input
        raise ComposeError([f"{where}: {problem}"]) from None
    return _Checker(source, base or Path.cwd()).check(document)


def too_large(source: str) -> str:
    return f"{source}: larger than {MAX_BYTES} bytes (1 MiB), the most a compose file holds"


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
                self.problem(line, f"unknown section {shown(section)}{_close(section, SECTIONS)}")
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
        label = f"{kind} {shown(name)}"
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
                self.problem(spot, f"{label}: unknown field {shown(key)}{_close(key, known)}")
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
        if kind == "processor":
            full["gitrepo"], unset = fill(full["gitrepo"])
            for name in unset:
                self.problem(
                    line,
                    f"{label}: gitrepo refers to ${{{name}}}, which is not set: "
                    f"export {name}=PASSWORD (or write the password in the file)",
                )
            if unset:
                return None
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
            wanted = _type_name(spec.type)
            self.problem(line, f"{label}: {spec.name} must be {wanted}, got {shown(value)}{hint}")
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
                raise UsageError(f"task {shown(values['task'])} is not a Python function name")
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
