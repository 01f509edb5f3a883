"""Reading a compose file: YAML parsed with each key's line, then every field checked.

The whole file is checked before the database is touched: YAML syntax, known sections and
fields, types, choices, names and cron lines, each error with its ``file:line``; all the
problems found are raised together in one :class:`ComposeError`.
"""

from __future__ import annotations

import difflib
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
from shellflow.model.network import PLUG_TYPES
from shellflow.model.store import MODELS


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
