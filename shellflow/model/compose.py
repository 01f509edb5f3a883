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

Each part is a module of its own, and every name callers use is importable from here:

- :mod:`~shellflow.model.compose_format`: sections, fields and defaults; :class:`Spec`
- :mod:`~shellflow.model.compose_load`: :func:`load`, parsing and checking a file
- :mod:`~shellflow.model.compose_plan`: :class:`Change`, :func:`plan`, :func:`plan_down`
- :mod:`~shellflow.model.compose_apply`: :func:`apply`, the changes made through the store
- :mod:`~shellflow.model.compose_export`: :func:`export`, the stored network as a file
- :mod:`~shellflow.model.compose_secrets`: a git URL's password exported as
  ``${SHELLFLOW_SECRET_<PROCESSOR>}`` and filled from the environment when a file is read
"""

from __future__ import annotations

from shellflow.model.compose_apply import Authorize, apply
from shellflow.model.compose_export import export
from shellflow.model.compose_format import (
    FIELDS,
    HEADER,
    KINDS,
    REFERENCES,
    SECTIONS,
    VERSION,
    ComposeError,
    Declared,
    Field,
    Spec,
    current,
    store_values,
)
from shellflow.model.compose_load import load
from shellflow.model.compose_plan import Change, plan, plan_down, summary

__all__ = [
    "FIELDS", "HEADER", "KINDS", "REFERENCES", "SECTIONS", "VERSION",
    "Authorize", "Change", "ComposeError", "Declared", "Field", "Spec",
    "apply", "current", "export", "load", "plan", "plan_down", "store_values", "summary",
]  # fmt: skip
