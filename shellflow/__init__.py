"""shellflow: functions kept in git repositories as durable, network-wide shell commands.

Importing the package must stay cheap: the ``flow`` command imports it on every start,
and shell completion re-runs ``flow`` on every TAB. Heavy libraries (SQLAlchemy, Celery,
Textual) are imported by the modules that need them, never here. The Python API
(``from shellflow import Socket, pipeline, ...``) is therefore exported lazily (PEP 562):
each name is imported from ``shellflow.client`` the first time it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module defining it, imported on first access.
_LAZY = {
    "Socket": "shellflow.client.api",
    "Function": "shellflow.client.api",
    "Processor": "shellflow.client.api",
    "Plug": "shellflow.client.api",
    "pipeline": "shellflow.client.canvas",
    "parallel": "shellflow.client.canvas",
    "funnel": "shellflow.client.canvas",
    "processor": "shellflow.client.decorators",
    "socket": "shellflow.client.decorators",
    "plug": "shellflow.client.decorators",
    "ProcessorBase": "shellflow.client.decorators",
    "configure": "shellflow.client.settings",
    "current_call_id": "shellflow.client.current",
}

__all__ = [
    "Function", "Plug", "Processor", "ProcessorBase", "Socket", "__version__", "configure",
    "current_call_id", "funnel", "parallel", "pipeline", "plug", "processor", "socket",
]  # fmt: skip

if TYPE_CHECKING:
    from shellflow.client.api import Function, Plug, Processor, Socket
    from shellflow.client.canvas import funnel, parallel, pipeline
    from shellflow.client.current import current_call_id
    from shellflow.client.decorators import ProcessorBase, plug, processor, socket
    from shellflow.client.settings import configure


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shellflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
