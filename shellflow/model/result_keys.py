"""The deployment's result-signing key: where it is kept, how it is read, made and rotated.

Why it exists: anyone who can ``PUBLISH`` on the result backend (a Redis account, a
broker account with an ``rpc://`` backend) could otherwise push a forged result into a
caller's shell pipeline. Workers sign every result they store with this key
(HMAC-SHA256, ``shellflow.engine.transport.result_signing``) and callers drop a result
whose signature does not check.

Where: one row of the ``settings`` table (name :data:`NAME`), so every party of the
deployment (callers, workers, agents: whoever holds the database URL) reads the same key
and no one else does: on the embedded default the database file is the owner's alone
(0600), on PostgreSQL the database's own grants decide. A Redis or broker account alone
does not give it. No migration: the table exists since the first revision.

The value is JSON: ``current`` (hex), ``previous`` (hex or null) and ``rotated`` (ISO time
of the last rotation). ``flow db init --rotate-key`` makes a new ``current`` and keeps the
old one as ``previous``; callers accept ``previous`` for :data:`GRACE` seconds after the
rotation (a worker started before it signs with the old key until it reads the key again,
at most :data:`REFRESH` seconds later; a stored result signed before it stays readable for
as long as the result backend keeps it). A second rotation drops the first key at once.

The key is made the first time any party needs it (an older database has none), by an
``INSERT`` that loses nothing to a concurrent one: whoever comes second reads the winner's.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shellflow import process_state
from shellflow.model.dialects import sql_time
from shellflow.model.listing import Reader, reader, writer

NAME = "result-signing-key"
KEY_BYTES = 32
GRACE = 24 * 3600  # seconds the previous key stays valid after a rotation (= result_expires)
REFRESH = 60.0  # seconds a process trusts the key it read before reading it again
RETRY_AFTER = 2.0  # seconds before a failed check may read the key again (a rotation)


@dataclass(frozen=True)
class KeyRing:
    """The key results are signed with, and the keys a signature is checked against."""

    current: bytes
    previous: bytes | None = None
    rotated: datetime | None = None

    def accepted(self, now: datetime | None = None) -> tuple[bytes, ...]:
        """``current``, and ``previous`` while the rotation's grace period lasts."""
        if self.previous is None or self.rotated is None:
            return (self.current,)
        if (now or datetime.now(UTC)) - self.rotated > timedelta(seconds=GRACE):
            return (self.current,)
        return (self.current, self.previous)

    def text(self) -> str:
        return json.dumps({
            "current": self.current.hex(),
            "previous": self.previous.hex() if self.previous else None,
            "rotated": self.rotated.isoformat() if self.rotated else None,
        })  # fmt: skip

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        data = json.loads(text)
        rotated = data.get("rotated")
        return cls(
            current=bytes.fromhex(data["current"]),
            previous=bytes.fromhex(data["previous"]) if data.get("previous") else None,
            rotated=datetime.fromisoformat(rotated) if rotated else None,
        )


def read(conn: Reader) -> KeyRing | None:
    """The key ring as stored (None: none made yet)."""
    rows = conn.query("SELECT value FROM settings WHERE name = ?", [NAME])
    return KeyRing.parse(rows[0][0]) if rows else None


def _insert(conn: Reader, ring: KeyRing) -> None:
    when = sql_time(conn.dialect, datetime.now(UTC))
    conn.execute(
        "INSERT INTO settings (id, created, name, status, requested_status, enabled,"
        " lastupdated, value) VALUES (?, ?, ?, 'ready', 'ready', ?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        [str(uuid.uuid4()), when, NAME, True, when, ring.text()],
    )


def read_ring(url: str) -> KeyRing | None:
    """The key ring as stored in the database at ``url`` (None: none made yet)."""
    with reader(url) as conn:
        return read(conn)


def ensure(url: str) -> KeyRing:
    """The deployment's key ring, made now if there is none yet."""
    with reader(url) as conn:
        found = read(conn)
    if found is not None:
        return found
    with writer(url) as conn:
        _insert(conn, KeyRing(secrets.token_bytes(KEY_BYTES)))
        made = read(conn)
    assert made is not None  # inserted, or inserted by a concurrent maker
    return made


def rotate(url: str) -> KeyRing:
    """Make a new current key; the old one is accepted for :data:`GRACE` seconds more."""
    with writer(url) as conn, conn.transaction():
        old = read(conn)
        ring = KeyRing(
            secrets.token_bytes(KEY_BYTES),
            previous=old.current if old else None,
            rotated=datetime.now(UTC) if old else None,
        )
        if old is None:
            _insert(conn, ring)
        else:
            conn.execute(
                "UPDATE settings SET value = ?, lastupdated = ? WHERE name = ?",
                [ring.text(), sql_time(conn.dialect, datetime.now(UTC)), NAME],
            )
    _cache.forget(url)
    return ring


class _Cache:
    """Key rings by database URL, each trusted for :data:`REFRESH` seconds."""

    def __init__(self) -> None:
        self.rings: dict[str, tuple[float, KeyRing]] = {}
        self.after_fork()

    def after_fork(self) -> None:
        """A forked child keeps the rings (the same deployment's) with a lock of its own."""
        self.lock = threading.Lock()

    def get(self, url: str, fresher_than: float | None = None) -> KeyRing:
        """The ring, read again once :data:`REFRESH` has passed (or if it was read before
        ``fresher_than``, a :func:`time.monotonic` time)."""
        now = time.monotonic()
        cached = self.rings.get(url)
        fresh = cached is not None and now - cached[0] < REFRESH
        if cached is not None and fresh and (fresher_than is None or cached[0] >= fresher_than):
            return cached[1]
        try:
            ring = ensure(url)
        except Exception:
            if cached is None:
                raise
            # The database is away (an outage a stream rides out): the ring held is the
            # deployment's still, unless a rotation happened meanwhile. Tried again after
            # REFRESH, not at each result (a connection attempt may take seconds).
            with self.lock:
                self.rings[url] = (now, cached[1])
            return cached[1]
        with self.lock:
            self.rings[url] = (now, ring)
        return ring

    def read_at(self, url: str) -> float | None:
        cached = self.rings.get(url)
        return cached[0] if cached else None

    def forget(self, url: str) -> None:
        with self.lock:
            self.rings.pop(url, None)


_cache = process_state.own(__name__, _Cache())


def remember(url: str, conn: Reader) -> None:
    """Read the ring on a connection the caller has open anyway (a cold ``flow task run``
    reading its route), so checking the result costs no connection of its own."""
    ring = read(conn)
    if ring is not None:
        with _cache.lock:
            _cache.rings[url] = (time.monotonic(), ring)


def ring_for(url: str) -> KeyRing:
    """This process's copy of the deployment's key ring (read at most every REFRESH s)."""
    return _cache.get(url)


def ring_again(url: str) -> KeyRing | None:
    """The ring read again, for a signature that did not check with the copy held (a
    rotation since): None if the copy is younger than :data:`RETRY_AFTER` seconds, so a
    flood of forged results cannot make a caller hammer the database."""
    read_at = _cache.read_at(url)
    if read_at is not None and time.monotonic() - read_at < RETRY_AFTER:
        return None
    return _cache.get(url, fresher_than=time.monotonic())
