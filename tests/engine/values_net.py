"""The hostile processor (``examples/processors/pyfi/processors/hostile.py``) on a
deployment, and what the value tests share: running a stream with raw bytes, the calls'
recorded states."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.conftest import _flow_executable
from tests.engine.conftest import Deployment, module_network

FUNCTIONS = ("echo", "pid", "deep", "big", "nul_result", "surrogate_result", "print_nul",
             "raise_nul", "not_json", "huge_int", "nan")  # fmt: skip
ENDED = ("finished", "failed")


def hostile_network(d: Deployment) -> dict[str, str]:
    """One processor with ONE worker process serving every function of the module."""
    return module_network(d, "hostile", FUNCTIONS)


def flow_bytes(
    d: Deployment, *args: str, stdin: bytes = b"", timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """``flow ARGS`` with raw bytes on stdin; stdout and stderr as bytes."""
    env = {**os.environ, **d.env, "NO_COLOR": "1"}
    return subprocess.run(
        [*_flow_executable(), *args], input=stdin, capture_output=True, env=env,
        timeout=timeout, check=False,
    )  # fmt: skip


def states(d: Deployment, socket: str) -> list[str]:
    return [str(row[0]) for row in d.query("SELECT state FROM call WHERE name = ?", (socket,))]


def args_of(d: Deployment, socket: str) -> list[Any]:
    import json

    rows = d.query("SELECT args FROM call WHERE name = ? ORDER BY created", (socket,))
    return [json.loads(row[0])["args"] for row in rows]
