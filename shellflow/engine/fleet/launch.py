"""How the agent starts what runs a processor's code: its build (pip) and its workers.

Neither gets shellflow's secrets in its environment (``shellflow.engine.worker.credentials``
says why and how): the build gets the agent's environment without them; a worker gets the
same, and its settings through a descriptor of a nameless 0600 file that its boot script
(:data:`WORKER_BOOT`, run before ``site`` so before any ``.pth`` file of the processor's
packages) reads and closes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from shellflow.config import ENV_INI, KEYS, Settings
from shellflow.engine.fleet.deploy import worker_env
from shellflow.engine.fleet.runas import Account
from shellflow.engine.pids import pid_alive
from shellflow.engine.worker.credentials import (
    SETTINGS_FD_OPTION,
    hand_over,
    scrubbed,
    secrets_of,
)

PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4  # <linux/prctl.h>


def keep_from_children() -> bool:
    """Make this process (the agent) undumpable, so that a process of the same OS user, such
    as a processor's build or function run without ``--run-as``, cannot read the agent's
    ``/proc/<pid>/environ`` (where its settings may be) or its memory: the kernel then gives
    those files to root and refuses to let anyone else trace it. A child is dumpable again
    once it starts another program, so the workers are not affected. Also means no core
    dump of the agent. True when done (Linux); elsewhere nothing happens."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return bool(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _boot_script() -> str:
    """The worker's boot script, as a file: its location is all the agent needs, and the
    commands are a layer above the engine (the import-linter contracts in pyproject.toml)."""
    spec = importlib.util.find_spec("shellflow")
    if spec is None or spec.origin is None:  # cannot happen while this module runs from it
        raise RuntimeError("cannot locate the shellflow package")
    return str(Path(spec.origin).resolve().parent / "commands" / "worker_boot.py")


WORKER_BOOT = _boot_script()


def settings_values(settings: Settings) -> dict[str, str]:
    """The effective settings, as the worker needs them."""
    return {key: settings[key] for key in KEYS}


def build_env(settings: Settings) -> dict[str, str]:
    """The agent's environment without a trace of the settings: what pip runs with."""
    return scrubbed(os.environ, secrets_of(settings_values(settings)))


def worker_process_env(settings: Settings, venv: Path) -> dict[str, str]:
    """What a worker is started with: no settings, and an ini file that holds nothing, so
    the command line's own loading of the settings never reads the agent's ini file."""
    return worker_env(base=build_env(settings), venv=venv) | {ENV_INI: os.devnull}


def worker_folder(home: Path, account: Account | None, name: str) -> Path:
    """A worker's working folder: in the agent's home, or the run-as user's workspace."""
    if account is None:
        folder = home / "workers" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return account.folder(account.folder(account.workspace / "workers") / name)


def start_worker(
    command: list[str],
    settings: Settings,
    venv: Path,
    workdir: Path,
    logfile: Path,
    secrets_folder: Path,
    account: Account | None = None,
) -> subprocess.Popen[bytes]:
    """Start a worker (``command`` is its ``flow worker start ...``) in its own process
    group, handing it the settings on an inherited descriptor (``--settings-fd N``).

    As ``account``'s user when there is one: its home setting is then the user's workspace
    (where its record spool goes), never the agent's home.
    """
    values = settings_values(settings)
    env = worker_process_env(settings, venv)
    as_user: dict[str, Any] = {}
    if account is not None:
        values["home"] = str(account.workspace)
        env, as_user = account.env(env), account.popen()
    fd = hand_over(values, secrets_folder)
    try:
        with open(logfile, "ab") as out:
            return subprocess.Popen(
                [*command, SETTINGS_FD_OPTION, str(fd)], cwd=workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, process_group=0,
                pass_fds=(fd,), **as_user,
            )  # fmt: skip
    finally:
        os.close(fd)  # the worker holds its own copy now


def last_line(path: Path, limit: int = 300) -> str:
    """The last non-blank line of a worker's log, squeezed and cut: why it ended, in one line."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return " ".join(lines[-1].split())[:limit] if lines else ""


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL to its process group when it overstays ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
