"""Which shell pipeline a ``flow`` process belongs to, so one pipeline is one flow run.

The commands of one pipeline (``a | b | c``, ``a | echo "$(cat -) x" | b``, or the
branches of ``tee >(a) >(b)``) are linked by pipes, not by anything they share in their
environment, and no process group identifies a pipeline in a non-interactive shell. So
shellflow follows the pipes (Linux ``/proc``):

1. From the process's stdin, walk upstream: the pipe's writer (a live process holding its
   write end), that process's stdin, and so on. Intermediate commands (``echo``, ``tee``,
   ``cat``) are still running when a downstream command starts, because they wait for
   the slow call upstream of them. The walk ends at a process whose stdin is no pipe,
   or at a pipe whose writer is already gone.
2. The pipeline's key is the last pipe of that walk: the first pipe of the pipeline. A
   process whose stdin is no pipe (the pipeline's first command) uses its stdout pipe.
   All commands of a pipeline therefore compute the same key, and no two live pipelines
   share one (a pipe is one kernel object; the key adds the boot id to its inode number).
3. The flow run of a key is created once, atomically (``O_CREAT|O_EXCL`` on a small file
   under ``<home>/pipes``): the first command to get there creates it, the others join.
   Each command also records its call id against its stdout pipe, so the next command
   downstream takes it as its parent call (after reading all of its input, by which time
   the upstream command has recorded it).

``--flow ID`` or ``SHELLFLOW_FLOW`` override all this; without ``/proc`` (not Linux) each
call starts its own flow run. Records older than a day are removed as new ones are made.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from shellflow.private import private_dir, private_file

PROC = Path("/proc")
MAX_AGE = 24 * 3600
MAX_DEPTH = 32


def _boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "noboot"


def pipe_inode(fd: int) -> int | None:
    """The inode of the pipe on ``fd``, or None when it is not a pipe."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_ino if stat.S_ISFIFO(info.st_mode) else None


def _writers(inode: int, skip: int) -> list[int]:
    """Live processes holding the write end of pipe ``inode`` (same user, via /proc)."""
    target = f"pipe:[{inode}]"
    found: list[int] = []
    try:
        entries = os.scandir(PROC)
    except OSError:
        return found
    with entries:
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == skip:
                continue
            fd_dir = f"/proc/{entry.name}/fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"{fd_dir}/{fd}") != target:
                        continue
                    with open(f"/proc/{entry.name}/fdinfo/{fd}") as info:
                        flags = next(line for line in info if line.startswith("flags:"))
                except (OSError, StopIteration):
                    continue
                if int(flags.split()[1], 8) & 0o3 in (os.O_WRONLY, os.O_RDWR):
                    found.append(int(entry.name))
                    break
    return found


def _stdin_pipe_of(pid: int) -> int | None:
    try:
        link = os.readlink(f"/proc/{pid}/fd/0")
    except OSError:
        return None
    if link.startswith("pipe:["):
        return int(link[6:-1])
    return None


def upstream_pipes(stdin_inode: int, me: int) -> list[int]:
    """The pipes from this process's stdin up to the pipeline's first pipe."""
    chain = [stdin_inode]
    seen = {me}
    while len(chain) < MAX_DEPTH:
        writers = [w for w in _writers(chain[-1], me) if w not in seen]
        if not writers:
            break
        writer = min(writers)  # a subshell and its child may share the write end
        seen.add(writer)
        upstream = _stdin_pipe_of(writer)
        if upstream is None or upstream in chain:
            break
        chain.append(upstream)
    return chain


@dataclass
class PipelinePlace:
    """Where this process sits in its shell pipeline."""

    key: str | None  # the pipeline's first pipe, None outside any pipeline
    upstream: list[str]  # keys of the pipes above us, nearest first
    stdout: str | None  # key of our stdout pipe, if it is one


def locate() -> PipelinePlace:
    if not PROC.is_dir():
        return PipelinePlace(None, [], None)
    boot = _boot_id()
    stdin, stdout = pipe_inode(0), pipe_inode(1)
    out_key = f"{boot}-{stdout}" if stdout is not None else None
    if stdin is None:
        return PipelinePlace(out_key, [], out_key)
    chain = [f"{boot}-{inode}" for inode in upstream_pipes(stdin, os.getpid())]
    return PipelinePlace(chain[-1], chain, out_key)


class Registry:
    """Flow runs and calls by pipe, as small files under ``<home>/pipes``."""

    def __init__(self, home: Path) -> None:
        self.folder = home / "pipes"

    def flow_for(self, key: str) -> str:
        """The flow run of a pipeline: created by the first command that asks."""
        private_dir(self.folder)
        path = self.folder / f"flow-{key}"
        candidate = str(uuid.uuid4())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # the creator writes right after creating: wait for it
                text = path.read_text().strip()
                if text:
                    return text
                time.sleep(0.002)
            return candidate
        with os.fdopen(fd, "w") as handle:
            handle.write(candidate)
        self._sweep()
        return candidate

    def record_call(self, key: str, call_id: str) -> None:
        """Say which call writes into pipe ``key`` (read by the command downstream)."""
        private_dir(self.folder)
        tmp = self.folder / f".call-{key}.{os.getpid()}"
        with os.fdopen(private_file(tmp, os.O_WRONLY | os.O_TRUNC), "w") as handle:
            handle.write(json.dumps({"call": call_id}))
        os.replace(tmp, self.folder / f"call-{key}")

    def call_writing(self, keys: list[str]) -> str | None:
        """The call writing into the nearest of these pipes that has one recorded."""
        for key in keys:
            try:
                return str(json.loads((self.folder / f"call-{key}").read_text())["call"])
            except (OSError, ValueError, KeyError):
                continue
        return None

    def _sweep(self) -> None:
        cutoff = time.time() - MAX_AGE
        try:
            for entry in os.scandir(self.folder):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
        except OSError:
            pass
