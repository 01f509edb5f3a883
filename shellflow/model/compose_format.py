"""The compose file format: its sections, each kind's fields, and what a checked file holds.

:data:`FIELDS` says, for each kind, the fields a file may give, their types, defaults and
choices, and the store key each one sets; :func:`store_values` and :func:`current` turn a
file's fields into the store's values and a stored object back into a file's fields. No
YAML and no queries here: :mod:`shellflow.model.compose` lists the modules that read, compare,
apply and write files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shellflow.errors import UsageError
from shellflow.model.network import PLUG_TYPES, QUEUE_TYPES

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
        _f("min_workers", int, minimum=1),
        _f("max_workers", int, minimum=1),
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


def store_values(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The file's fields as the store's value keys (``tag`` -> ``gittag``), nulls left out."""
    return {f.key: values[f.name] for f in FIELDS[kind] if values.get(f.name) is not None}


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
