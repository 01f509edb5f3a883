"""The writer thread of a worker's main process: commits its spool in batches.

Pool processes append each call's records to the spool (``shellflow.engine.records.spool``) and
go on; this thread reads every new line, commits what it read in one transaction through
a :class:`~shellflow.engine.records.store.RecordStore`, and publishes the batch's events
on the live channels once they are committed. It is woken by the spool's pipe, so an idle
worker commits a call's record within a millisecond or two of its end, and a busy one
commits many calls per transaction (the database's cost per call falls by more than half).

It never loses a line: offsets advance only after a commit; while the database is away,
lines wait in their files (calls go on meanwhile, their records safe on disk). At start it
drains what workers that ended without draining left behind, and at shutdown, once the
pool's processes are gone, it commits what is left and deletes the folder. A line the
database refuses outright (a schema that does not match, say) is retried alone, so it
alone is dropped and logged.

The spool is bounded (``shellflow.engine.records.spool.Backlog``): the writer counts the
bytes it commits from its own folder, and a pool process whose record would take the bytes
waiting past :func:`~shellflow.engine.records.spool.max_bytes` waits until they are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from shellflow.engine.records.spool import (
    Backlog,
    Spool,
    SpoolFolder,
    leftovers,
    max_bytes,
    worker_folder,
)
from shellflow.engine.records.store import RecordStore, RecordsUnavailable
from shellflow.private import private_dir

BATCH_LINES = 2000  # lines committed in one transaction at most
COMMIT_EVERY = 0.05  # seconds between the starts of two commits, so busy batches grow
CLEAN_EVERY = 1.0  # seconds between deletions of consumed files
RETRY_DELAY = 1.0  # seconds between attempts while the database is away

log = logging.getLogger(__name__)


class Committer:
    """Commits spool folders through one record store: a worker's own, as it grows, and
    the leftovers of workers that ended without draining theirs."""

    backlog: Backlog | None = None  # the bytes of the own folder's that wait (a worker's)
    _own: SpoolFolder | None = None  # a worker's own folder

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self._cleaned = 0.0

    def commit_leftovers(self, root: Path, own: Path) -> int:
        """Commit and remove the folders under ``root`` of workers that are gone (claimed
        for ``own``, a folder name of a live process: ``spool.leftovers``); how many.
        A folder the database stayed away from is left for a later try."""
        done = 0
        for folder in leftovers(root, own):
            log.warning("committing call records a stopped worker left in %s", folder)
            if self._drain(SpoolFolder(folder), final=True):
                with contextlib.suppress(OSError):
                    shutil.rmtree(folder)
                done += 1
        return done

    def _drain(self, files: SpoolFolder, final: bool) -> bool:
        """Commit every complete line there is; False if the database stayed away."""
        deadline = time.monotonic() + 60
        while True:
            try:
                committed = self._commit(files)
            except Exception:
                log.exception("call records: spool writer")
                committed = False
            if committed and not files.has_unread():
                for problem in files.clean(final=final):
                    log.warning("call records: dropped %s", problem)
                files.close()
                return True
            if not committed:
                if time.monotonic() > deadline:
                    return False
                time.sleep(RETRY_DELAY)

    def _commit(self, files: SpoolFolder, cut: int | None = None) -> bool:
        """Commit the new lines of ``files`` (False: the database is away; read again).

        While the pool runs, only the lines written before ``cut``, oldest first, so that
        transactions commit records in the order they were made (see ``SpoolFolder.read``);
        a drain takes all (its processes have ended; a leftover may predate a reboot,
        whose clock started again).
        """
        lines = files.read(cut)
        for start in range(0, len(lines), BATCH_LINES):
            batch = lines[start : start + BATCH_LINES]
            try:
                self._write(batch)
            except RecordsUnavailable as exc:
                log.warning("call records wait in the spool: %s", exc)
                self.store.discard()
                files.forget()
                return False
            moved = sum(files.committed(tail, offset) for tail, offset, _ in batch)
            if files is self._own and self.backlog is not None:
                self.backlog.committed(moved)
        now = time.monotonic()
        if now - self._cleaned > CLEAN_EVERY:
            self._cleaned = now
            files.clean()
        return True

    def _write(self, batch: list[tuple[Any, int, bytes]]) -> None:
        store = self.store
        try:
            store.absorb(*(line for _, _, line in batch))
            store.flush(patience=5.0)
            return
        except RecordsUnavailable:
            raise
        except Exception:  # unreadable or refused as a whole: find the line(s) to blame
            store.discard()
        for _, _, line in batch:
            for attempt in (line, storable(line)):
                try:
                    store.absorb(attempt)
                    store.flush(patience=5.0)
                    break
                except RecordsUnavailable:
                    raise
                except Exception as exc:
                    store.discard()
                    if attempt is not line:
                        log.error("call records refused by the database, dropped: %s: %.300r",
                                  exc, line)  # fmt: skip


class SpoolWriter(Committer):
    """Owns one worker's spool folder and the thread that commits it."""

    def __init__(self, root: Path, store: RecordStore, limit: int | None = None) -> None:
        super().__init__(store)
        self.root = root
        self.folder = worker_folder(root)
        self.backlog = Backlog(max_bytes() if limit is None else limit)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        os.set_blocking(self._wake_read, False)
        self._own = self._files = SpoolFolder(self.folder)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def spool(self) -> Spool:
        """The appending side, for the worker's processes (forked after this)."""
        return Spool(self.folder, self._wake_write, self.backlog)

    def start(self) -> None:
        """Drain what dead workers left, then commit this worker's spool as it grows."""
        private_dir(self.folder)
        self.commit_leftovers(self.root, self.folder)
        self._thread = threading.Thread(target=self._run, name="shellflow-spool", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit everything left (the pool's processes have ended) and remove the folder."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")
        if self._thread is not None:
            self._thread.join()
        if self._drain(self._files, final=True):
            with contextlib.suppress(OSError):
                shutil.rmtree(self.folder)
        else:
            log.error("call records left in %s; the next worker commits them", self.folder)
        self.store.close()

    def _run(self) -> None:
        """Commit as lines come, at most one commit per COMMIT_EVERY.

        An idle worker's first record is committed at once; under load, the lines that
        arrive while one commit runs (and the pause after it) make the next batch.
        """
        last = 0.0
        while not self._stop.is_set():
            with contextlib.suppress(InterruptedError):
                select.select([self._wake_read], [], [], CLEAN_EVERY)
            pause = last + COMMIT_EVERY - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_read, 65536)
            if self._stop.is_set():
                return
            last = time.monotonic()
            try:
                if not self._commit(self._files, cut=time.monotonic_ns()):
                    self._stop.wait(RETRY_DELAY)
            except Exception:  # never let the thread die: lines wait in their files
                log.exception("call records: spool writer")
                self._stop.wait(RETRY_DELAY)


def storable(line: bytes) -> bytes:
    """A spooled line with its stored text made storable (NUL and lone surrogates escaped,
    as the recorder writes them), for a line the database refused: spooled by an older
    worker, or text that slipped past the recorder. Its live events' data is not stored."""
    import json

    from shellflow.values import shown_text

    def clean(value: Any) -> Any:
        return shown_text(value, 1 << 62) if isinstance(value, str) else value

    try:
        record = json.loads(line)
        for key in ("r", "u", "e", "l"):
            record[key] = [[clean(v) for v in entry] for entry in record.get(key, ())]
        return json.dumps(record, separators=(",", ":")).encode()
    except Exception:  # unreadable: it stays refused
        return line
