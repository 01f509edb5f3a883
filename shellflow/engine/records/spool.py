"""A worker's record spool: the files its processes append call records to.

Why a spool: a prefork pool process may not report a call done before its record is safe,
and a transaction per call costs the database more than the call itself costs the worker.
Appending the record to a local file is safe the moment ``write`` returns (the kernel holds
it even if the process is killed), costs one system call, and lets one writer in the
worker's main process commit many calls' records in one transaction
(``shellflow.engine.records.spool_writer``).

Layout, under the shellflow home::

    spool/<database key>-<processor>/<main pid>-<its start time>/<pid>-<n>.spool

Each process of a worker appends to its own file, one line per write: the time of the
write (``CLOCK_MONOTONIC`` in nanoseconds, 16 hex digits, one clock for every process of
the machine), a space, and the JSON of the records. A file is replaced by the next ``<n>``
once it passes :data:`ROTATE_BYTES`, so consumed files can be deleted while their process
goes on. The main process's pid and start time name the folder, so that a worker starting
after a crash can tell (and claim) the leftovers of a dead one. After each append a
process writes one byte to the writer's wake pipe, which never blocks: a full pipe already
means the writer has something to read.

**Bounded.** The bytes spooled and not committed yet are counted in memory shared by the
worker's processes (:class:`Backlog`, made before the pool forks). While the database is
slow or away they grow; a pool process whose append would take them past the bound waits
until the writer has committed enough, before it reports its call done. Its message stays
unacknowledged and the process takes no other call, so with the worker's prefetch (one
message per process) the calls not taken wait in the broker: none is dropped, and the
spool never holds more than the bound (plus one line, if a single line is larger).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shellflow import forks
from shellflow.engine.pids import ProcessId, pid_alive
from shellflow.private import private_dir

ROTATE_BYTES = 4 << 20  # a process starts a new spool file past this size
SUFFIX = ".spool"
MAX_BYTES = 64 << 20  # spooled bytes not committed yet, at most (SHELLFLOW_SPOOL_MAX_BYTES)
MAX_BYTES_ENV = "SHELLFLOW_SPOOL_MAX_BYTES"
FULL_POLL = 0.05  # seconds between looks while the spool is full

log = logging.getLogger(__name__)


def max_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The bound of a worker's spool: :data:`MAX_BYTES` or the environment's (bytes, > 0)."""
    text = (os.environ if environ is None else environ).get(MAX_BYTES_ENV, "").strip()
    if not text:
        return MAX_BYTES
    if not text.isdigit() or int(text) <= 0:
        from shellflow.errors import UsageError

        raise UsageError(f"{MAX_BYTES_ENV}={text!r}: expected a number of bytes above 0")
    return int(text)


class Backlog:
    """Bytes spooled and bytes committed, shared by a worker's processes.

    Made before the pool forks: the two counters live in shared memory. They are changed
    under a POSIX record lock on an unlinked file (and a thread lock within a process):
    the kernel releases a process's record lock when it dies, so a pool process killed
    while it held the lock cannot leave the others waiting for ever, as a semaphore would.
    """

    def __init__(self, limit: int) -> None:
        import multiprocessing
        import tempfile

        self.limit = limit
        self._counts = multiprocessing.RawArray("q", 2)  # spooled, committed
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (held for the worker's life)
        self._after_fork()
        forks.at_fork(self._after_fork)

    def _after_fork(self) -> None:
        self._threads = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        with self._threads:
            fcntl.lockf(self._file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._file.fileno(), fcntl.LOCK_UN)

    @property
    def waiting(self) -> int:
        """Bytes spooled and not committed yet."""
        with self._locked():
            return int(self._counts[0] - self._counts[1])

    def reserve(self, size: int, wait: bool = True) -> None:
        """Count ``size`` bytes about to be appended, first waiting (``wait``) while they
        would take the backlog past the limit; a line alone over the limit waits for an
        empty spool."""
        warned = False
        while True:
            with self._locked():
                backlog = self._counts[0] - self._counts[1]
                if not wait or backlog == 0 or backlog + size <= self.limit:
                    self._counts[0] += size
                    return
            if not warned:
                warned = True
                log.warning("call records: the spool is full (%d bytes wait for the database,"
                            " the bound is %d); this process takes no call until it drains",
                            backlog, self.limit)  # fmt: skip
            time.sleep(FULL_POLL)

    def unreserve(self, size: int) -> None:
        """Bytes reserved and not written after all (an append that failed)."""
        if size:
            with self._locked():
                self._counts[0] -= size

    def committed(self, size: int) -> None:
        if size:
            with self._locked():
                self._counts[1] += size


def spool_root(home: Path, db_url: str, processor: str) -> Path:
    """The folder of one processor's spools, per model database (never mixed up)."""
    key = hashlib.sha1(db_url.encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", processor)[:80]
    return home / "spool" / f"{key}-{safe}"


def spool_roots(home: Path, db_url: str) -> list[Path]:
    """The folders of every processor's spools under ``home`` for this model database."""
    key = hashlib.sha1(db_url.encode()).hexdigest()[:12]
    try:
        return sorted(p for p in (home / "spool").glob(f"{key}-*") if p.is_dir())
    except OSError:
        return []


def worker_folder(root: Path, pid: int | None = None) -> Path:
    """The spool folder of the worker whose main process is ``pid`` (default: this one).

    Named by pid and start time, so a pid used again by another process after a restart
    does not pass for the worker that left the folder.
    """
    owner = ProcessId.current() if pid is None else ProcessId.of(pid)
    return root / str(owner)


def _owner_alive(name: str) -> bool:
    owner = ProcessId.parse(name)
    return owner is not None and owner.alive()


class Spool:
    """The appending side, shared by a worker's processes (each opens its own file)."""

    def __init__(
        self, folder: Path, wake_fd: int | None = None, backlog: Backlog | None = None
    ) -> None:
        self.folder = folder
        self.wake_fd = wake_fd
        self.backlog = backlog
        self._owner = os.getpid()  # the worker's main process never waits: its writer is here
        self.after_fork()
        forks.at_fork(self.after_fork)

    def after_fork(self) -> None:
        """A forked process appends to a file of its own, never to its parent's."""
        self._fd = -1
        self._n = 0
        self._size = 0

    def _open(self) -> None:
        if self._fd < 0 or self._size >= ROTATE_BYTES:
            if self._fd >= 0:
                os.close(self._fd)
            self._n += 1
            private_dir(self.folder)
            path = self.folder / f"{os.getpid()}-{self._n}{SUFFIX}"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = 0

    def append(self, line: bytes) -> None:
        """Add one record line (ending in a newline); safe once this returns."""
        line = b"%016x " % time.monotonic_ns() + line
        if self.backlog is not None:
            self.backlog.reserve(len(line), wait=os.getpid() != self._owner)
        view = memoryview(line)
        try:
            self._open()
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except BaseException:
            if self.backlog is not None:  # what was not written is not waiting
                self.backlog.unreserve(len(view))
            raise
        self._size += len(line)
        if self.wake_fd is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.wake_fd, b"\0")

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1


@dataclass
class _Tail:
    """How far one spool file has been read."""

    path: Path
    pid: int
    n: int
    offset: int = 0  # the lines before it are committed
    read_to: int = 0  # how far the file has been read
    rest: bytes = field(default=b"", repr=False)  # an incomplete line read at its end
    fd: int = -1

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _read_from(fd: int, offset: int) -> bytes:
    chunks = []
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class SpoolFolder:
    """The reading side: new complete lines of every file in one worker's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._tails: dict[Path, _Tail] = {}

    def read(self, cut: int | None = None) -> list[tuple[_Tail, int, bytes]]:
        """Every complete line not read yet, as (file, offset just after it, record), in
        the order they were written.

        With ``cut`` (a ``time.monotonic_ns()`` taken before this read), only the lines
        written before it: a consistent cut of all the files. A record caused by another
        (a plug's call by its source's end) was written after it, so whatever the cut
        holds, it holds what led to it; without the cut, a file read early in the sweep
        could miss the cause while a file read later already holds the effect. Later
        lines wait for the next read.
        """
        found: list[tuple[int, _Tail, int, bytes]] = []
        for tail in self._scan():
            try:
                if tail.fd < 0:
                    tail.fd = os.open(tail.path, os.O_RDONLY)
                data = _read_from(tail.fd, tail.read_to)
            except FileNotFoundError:
                continue
            if not data:
                continue
            tail.read_to += len(data)
            data = tail.rest + data
            base = tail.read_to - len(data)
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                stamp, record = _stamped(data[start:end])
                if cut is not None and stamp >= cut:
                    break  # this line and the ones after it: next time
                found.append((stamp, tail, base + end + 1, record))
                start = end + 1
            else:
                tail.rest = data[start:]
                continue
            tail.read_to, tail.rest = base + start, b""
        found.sort(key=lambda entry: entry[0])  # stable: a file's lines keep their order
        return [(tail, offset, record) for _, tail, offset, record in found]

    def _scan(self) -> Iterator[_Tail]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in sorted(names, key=_order):
            if not name.endswith(SUFFIX):
                continue
            path = self.folder / name
            tail = self._tails.get(path)
            if tail is None:
                pid, n = _order(name)
                tail = self._tails[path] = _Tail(path, pid, n)
            yield tail

    def committed(self, tail: _Tail, offset: int) -> int:
        """Lines of ``tail`` up to ``offset`` are in the database; the bytes newly so."""
        moved = max(0, offset - tail.offset)
        tail.offset += moved
        return moved

    def has_unread(self) -> bool:
        """Whether a file holds bytes not read yet (or a file not seen yet)."""
        try:
            names = {name for name in os.listdir(self.folder) if name.endswith(SUFFIX)}
        except FileNotFoundError:
            return False
        if names - {path.name for path in self._tails}:
            return True
        for tail in self._tails.values():
            with contextlib.suppress(FileNotFoundError):
                if tail.path.stat().st_size > tail.read_to:
                    return True
        return False

    def close(self) -> None:
        for tail in self._tails.values():
            tail.close()

    def forget(self) -> None:
        """Re-read from the committed offsets (the last batch did not commit)."""
        for tail in self._tails.values():
            tail.read_to = tail.offset
            tail.rest = b""

    def clean(self, final: bool = False) -> list[str]:
        """Delete files read to their end whose process has moved on or ended.

        With ``final`` (every process of the worker has ended), a file's incomplete last
        line is a write its process never finished (killed mid-write, so the call was never
        acknowledged and is delivered again): it is dropped with the file and reported.
        """
        newest: dict[int, int] = {}
        for tail in self._tails.values():
            newest[tail.pid] = max(newest.get(tail.pid, 0), tail.n)
        dropped = []
        for path, tail in list(self._tails.items()):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                self._tails.pop(path).close()
                continue
            done = final or tail.n < newest[tail.pid] or not pid_alive(tail.pid)
            if not done:
                continue
            if size > tail.offset:
                if not final:
                    continue
                dropped.append(f"{path.name}: {size - tail.offset} bytes of an unfinished write")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._tails.pop(path).close()
        return dropped


def _stamped(line: bytes) -> tuple[int, bytes]:
    """A line's write time and its record (a line spooled without a time counts as 0)."""
    if len(line) > 17 and line[16:17] == b" " and line[:1] != b"{":
        with contextlib.suppress(ValueError):
            return int(line[:16], 16), line[17:]
    return 0, line


def _order(name: str) -> tuple[int, int]:
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    pid, _, n = stem.partition("-")
    try:
        return int(pid), int(n)
    except ValueError:
        return 0, 0


def leftovers(root: Path, own: Path) -> Iterator[Path]:
    """Folders of workers that ended without draining them, claimed for this worker.

    Claimed by renaming (atomic), so two workers starting at once never both drain one; a
    claim whose claimer died is claimed again, and a folder ``own`` claimed before (whose
    drain the database held back) is yielded again, to be tried again.
    """
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return
    for entry in entries:
        path = Path(entry.path)
        if path == own or not entry.is_dir():
            continue
        owner, _, claimer = entry.name.partition(".claimed-")
        if claimer == own.name:
            yield path
            continue
        if _owner_alive(claimer or owner):
            continue
        claimed = root / f"{owner}.claimed-{own.name}"
        try:
            os.rename(path, claimed)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                continue
            raise
        yield claimed
