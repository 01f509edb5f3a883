"""The rights a privilege can grant (spec section 10.1.9).

Pure Python so the CLI can offer them as choices without importing SQLAlchemy. The spec's
list glued ``EDIT_PROCESSOR_CODE`` and ``LS_PROCESSORS`` together through a missing comma;
here they are two rights. The spec lists rights twice (CLI chapter and ORM) and the lists
differ: this is their union (UPDATE_PRIVILEGE and UPDATE_QUEUE from one, READ_LOG from the
other). ``READ_AUDIT`` (reading the audit trail, ``flow ls audit``), ``READ_CALL`` and
``LISTEN`` are this project's: the spec names no right for reading the trail, call data or
listening, and ``READ`` (every read) is too wide to hand out for that alone.
"""

from __future__ import annotations

from enum import StrEnum

_GENERAL = ["ALL", "CREATE", "READ", "UPDATE", "DELETE", "DB_DROP", "DB_INIT", "START_AGENT",
            "READ_AUDIT"]  # fmt: skip
_TASKS = ["RUN_TASK", "CANCEL_TASK"]
# Reading what calls did: their records, arguments, results and logs (``flow ls calls``,
# ``flow ls call``, the dashboard's Calls screen), and listening to the events processors
# publish (``flow listen``, the dashboard's Live screen, ``flow tui --channel``).
_CALLS = ["READ_CALL", "LISTEN"]
_PROCESSOR = [
    "START_PROCESSOR", "STOP_PROCESSOR", "PAUSE_PROCESSOR", "RESUME_PROCESSOR",
    "LOCK_PROCESSOR", "UNLOCK_PROCESSOR", "VIEW_PROCESSOR", "VIEW_PROCESSOR_CONFIG",
    "VIEW_PROCESSOR_CODE", "EDIT_PROCESSOR_CONFIG", "EDIT_PROCESSOR_CODE",
]  # fmt: skip
_LS = [
    "LS_PROCESSORS", "LS_USERS", "LS_USER", "LS_PLUGS", "LS_SOCKETS", "LS_QUEUES",
    "LS_AGENTS", "LS_NODES", "LS_SCHEDULERS", "LS_WORKERS",
]  # fmt: skip
_OBJECTS = ["PROCESSOR", "AGENT", "NODE", "PLUG", "PRIVILEGE", "QUEUE", "ROLE", "SCHEDULER",
            "SOCKET", "USER"]  # fmt: skip
_VERBS = {
    "ADD": _OBJECTS,
    "UPDATE": _OBJECTS,
    "DELETE": _OBJECTS,
    "READ": [*_OBJECTS[:3], "LOG", *_OBJECTS[3:]],
}

RIGHTS: tuple[str, ...] = tuple(
    _GENERAL + _TASKS + _CALLS + _PROCESSOR + _LS
    + [f"{verb}_{obj}" for verb, objs in _VERBS.items() for obj in objs]
)  # fmt: skip

# Rights a grant may hold on one processor alone (``flow add privilege ... --processor P``):
# reading that processor's calls and events, listening to it, and acting on it.
SCOPABLE: tuple[str, ...] = ("READ_CALL", "LISTEN", "START_PROCESSOR", "STOP_PROCESSOR",
                             "PAUSE_PROCESSOR", "RESUME_PROCESSOR")  # fmt: skip

Right = StrEnum("Right", [(r, r) for r in RIGHTS])  # type: ignore[misc]
