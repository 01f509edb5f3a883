"""Migrated template databases, built once and copied by every test that needs one.

Running the migrations costs a second or more per database; copying a migrated one costs
milliseconds (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL). A
template is named by a digest of the migrations, so a changed schema gets a new one, and is
built under a lock, so parallel test processes (pytest-xdist) build it once between them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "shellflow" / "model" / "migrations"


@functools.cache
def digest() -> str:
    """Of every migration, the schema module, the rights (the first migration seeds one
    privilege row per right) and the row-level security: a new schema, a new right or new
    policies, a new template."""
    sha = hashlib.sha256()
    model = ROOT / "shellflow" / "model"
    files = [*sorted(MIGRATIONS.rglob("*.py")), model / "schema.py", model / "rights.py",
             model / "rls.py"]  # fmt: skip
    for path in files:
        sha.update(path.relative_to(ROOT).as_posix().encode())
        sha.update(path.read_bytes())
    sha.update(json.dumps(ALLOW_ALL).encode())  # what the PostgreSQL template stores
    return sha.hexdigest()[:12]


# The repository allowlist of every PostgreSQL test database made from the template: on
# PostgreSQL no repository is allowed until one is set (``shellflow.model.repos``), and the
# tests deploy local repositories and name made-up remote ones. Tests of the allowlist
# itself unset it first (``flow config unset repos.allow``).
ALLOW_ALL = ["*"]


def allow_all(url: str) -> None:
    """Store :data:`ALLOW_ALL` as the ``repos.allow`` of the database at ``url``."""
    from shellflow.model import repos
    from shellflow.model.db import session_scope

    with session_scope(url) as session:
        repos.save(session, ALLOW_ALL, "tests")


def _folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"shellflow-test-templates-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


@functools.cache
def sqlite() -> Path:
    """The path of a migrated SQLite database file; copy it, never open it."""
    from shellflow.model import schema
    from shellflow.model.db import dispose_engines

    path = _folder() / f"model-{digest()}.db"
    with open(_folder() / "sqlite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            building = path.with_suffix(f".{os.getpid()}.building")
            schema.upgrade(f"sqlite:///{building}")
            dispose_engines()
            for extra in ("-wal", "-shm"):
                Path(f"{building}{extra}").unlink(missing_ok=True)
            os.replace(building, path)
    return path


@functools.cache
def postgresql() -> str:
    """The name of a migrated PostgreSQL database to use as ``TEMPLATE``; never connect to it.

    Kept between runs (it is small, and named by the schema's digest); built under an
    advisory lock so that concurrent test processes build it once.
    """
    import psycopg2

    from shellflow.model import schema
    from shellflow.model.db import dispose_engines
    from tests.conftest import PG_ADMIN_URL, PG_HOST, PG_PORT

    name = f"sf_template_{digest()}"
    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext('shellflow test templates'))")
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                building = f"{name}_building_{os.getpid()}"
                cur.execute(f'DROP DATABASE IF EXISTS "{building}"')
                cur.execute(f'CREATE DATABASE "{building}"')
                schema.upgrade(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{building}")
                allow_all(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{building}")
                dispose_engines()
                cur.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            cur.execute("SELECT pg_advisory_unlock(hashtext('shellflow test templates'))")
    finally:
        conn.close()
    return name


def copy_sqlite(to: Path) -> str:
    """A migrated SQLite database at ``to``; its URL."""
    shutil.copyfile(sqlite(), to)
    return f"sqlite:///{to}"
