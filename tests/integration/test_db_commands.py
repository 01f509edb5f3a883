"""``flow db init|migrate|drop|rebuild|json`` on SQLite and the real PostgreSQL.

What the commands did is checked by reading the database with a separate SQLAlchemy engine,
never through shellflow's own read path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from shellflow.commands import db as db_commands
from shellflow.model import schema
from shellflow.model.rights import RIGHTS
from shellflow.model.tables import Base
from shellflow.model.urls import sqlalchemy_url

MODEL_TABLES = set(Base.metadata.tables)
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine of the test's own, independent of shellflow's engine cache."""
    eng = create_engine(sqlalchemy_url(db_url))
    yield eng
    eng.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def scalar_rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text(sql))]


def one_line_error(result: Any, code: int) -> str:
    assert result.code == code, (result.code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_init_creates_every_table_and_one_privilege_per_right(
    cli: Any, db_url: str, engine: Engine
) -> None:
    result = cli.ok("db", "init")
    assert "initialised" in result.stderr and result.stdout == ""
    assert tables(engine) == MODEL_TABLES | {"alembic_version"}
    rights = scalar_rows(engine, 'SELECT "right" FROM privilege')
    assert sorted(rights) == sorted(RIGHTS)
    assert len(rights) == len(set(rights))
    # the spec's missing comma glued these two together; here they are two rights
    assert {"EDIT_PROCESSOR_CODE", "LS_PROCESSORS"} <= set(rights)
    assert scalar_rows(engine, "SELECT version_num FROM alembic_version") == [schema.head()]


def test_a_second_init_changes_nothing_and_says_so(cli: Any, db_url: str, engine: Engine) -> None:
    cli.ok("db", "init")
    cli.ok("add", "queue", "-n", "q1", "-t", "fanout")
    before = cli.ok("db", "json").stdout
    result = cli.ok("db", "init")
    assert "already initialised" in result.stderr and "nothing changed" in result.stderr
    assert scalar_rows(engine, "SELECT name FROM queue") == ["q1"]
    assert cli.ok("db", "json").stdout == before


def test_two_inits_at_once_both_succeed(flow: Any, db_url: str, engine: Engine) -> None:
    """The schema lock serialises them: one creates, the other finds it done."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: flow("db", "init"), range(2)))
    assert [r.code for r in results] == [0, 0], results
    said = sorted("already initialised" in r.stderr for r in results)
    assert said == [False, True], results
    assert sorted(scalar_rows(engine, 'SELECT "right" FROM privilege')) == sorted(RIGHTS)


def test_migrate_on_an_up_to_date_database_has_nothing_to_do(cli: Any, initialised_db: str) -> None:
    result = cli.ok("db", "migrate")
    assert "nothing to do" in result.stderr


def test_migrate_on_an_empty_database_creates_the_schema(
    cli: Any, db_url: str, engine: Engine
) -> None:
    result = cli.ok("db", "migrate")
    assert f"migrated from empty to {schema.head()}" in result.stderr
    assert tables(engine) == MODEL_TABLES | {"alembic_version"}


def test_init_refuses_a_database_holding_other_tables(
    cli: Any, db_url: str, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE theirs (x INTEGER)"))
    line = one_line_error(cli("db", "init"), 4)
    assert "no shellflow schema" in line
    assert tables(engine) == {"theirs"}


@pytest.mark.parametrize("action", ["drop", "rebuild"])
def test_destruction_without_yes_and_without_a_terminal_is_refused(
    action: str, cli: Any, initialised_db: str, engine: Engine
) -> None:
    cli.ok("add", "queue", "-n", "q1")
    line = one_line_error(cli("db", action), 2)
    assert "-y" in line
    assert scalar_rows(engine, "SELECT name FROM queue") == ["q1"]


@pytest.mark.parametrize(("answer", "code", "kept"), [("n\n", 130, ["q1"]), ("y\n", 0, None)])
def test_drop_on_a_terminal_asks_first(
    answer: str, code: int, kept: list[str] | None, cli: Any, initialised_db: str,
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cli.ok("add", "queue", "-n", "q1")
    monkeypatch.setattr(db_commands, "stdin_is_tty", lambda: True)
    result = cli("db", "drop", input=answer)
    assert result.code == code, result.stderr
    assert "Continue?" in result.stderr
    if kept is None:
        assert tables(engine) == set()
    else:
        assert scalar_rows(engine, "SELECT name FROM queue") == kept


def test_drop_yes_drops_everything_and_commands_then_say_not_initialised(
    cli: Any, initialised_db: str, engine: Engine
) -> None:
    cli.ok("add", "queue", "-n", "q1")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE theirs (x INTEGER)"))
    result = cli.ok("db", "drop", "-y")
    assert f"Dropped {len(MODEL_TABLES)} tables" in result.stderr
    assert tables(engine) == {"theirs"}  # only shellflow's tables go
    for args in (("ls", "queues"), ("add", "queue", "-n", "q2"), ("db", "json")):
        line = one_line_error(cli(*args), 6)
        assert "not initialised" in line and "flow db init" in line, args


def test_rebuild_yes_leaves_an_empty_initialised_database(
    cli: Any, initialised_db: str, engine: Engine
) -> None:
    cli.ok("add", "queue", "-n", "q1")
    cli.ok("add", "user", "-n", "joe", "-e", "j@x", "--password-stdin", input="secret\n")
    cli.ok("db", "rebuild", "-y")
    assert tables(engine) == MODEL_TABLES | {"alembic_version"}
    assert scalar_rows(engine, "SELECT name FROM queue") == []
    assert scalar_rows(engine, "SELECT name FROM users") == []
    assert sorted(scalar_rows(engine, 'SELECT "right" FROM privilege')) == sorted(RIGHTS)
    assert cli.ok("ls", "queues").stdout == ""


class _FailingAfterUpgrade:
    """Alembic's command module, except that ``upgrade`` fails once it has done its work."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def upgrade(self, *args: Any, **kwargs: Any) -> None:
        self.real.upgrade(*args, **kwargs)
        raise RuntimeError("injected failure after the upgrade")


def test_a_rebuild_that_fails_keeps_the_old_data(
    cli: Any, initialised_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drop and create run in one transaction, DDL included, on both databases."""
    from shellflow.model import schema

    cli.ok("add", "queue", "-n", "q1")
    monkeypatch.setattr(schema, "command", _FailingAfterUpgrade(schema.command))
    result = cli("db", "rebuild", "-y")
    assert result.code == 1 and "injected failure" in result.stderr
    assert scalar_rows(engine, "SELECT name FROM queue") == ["q1"]
    assert tables(engine) == MODEL_TABLES | {"alembic_version"}


def test_an_init_that_fails_leaves_an_empty_database(
    cli: Any, db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.model import schema

    real = schema.command
    monkeypatch.setattr(schema, "command", _FailingAfterUpgrade(real))
    assert cli("db", "init").code == 1
    assert tables(engine) == set()
    monkeypatch.setattr(schema, "command", real)
    cli.ok("db", "init")  # not stuck with half a schema


def test_db_json_is_the_whole_database_without_secrets(
    cli: Any, initialised_db: str, engine: Engine
) -> None:
    cli.ok("add", "queue", "-n", "q1", "-t", "fanout")
    cli.ok("add", "user", "-n", "joe", "-e", "j@x", "--password-stdin", input="secret\n")
    stored_hash = scalar_rows(engine, "SELECT password_hash FROM users WHERE name = 'joe'")[0]
    assert stored_hash.startswith("$argon2")

    out = cli.ok("db", "json").stdout
    assert len(out.strip().splitlines()) == 1
    data = json.loads(out)
    assert isinstance(data, dict)
    assert set(data) == MODEL_TABLES
    assert "secret" not in out
    assert stored_hash not in out and "$argon2" not in out
    assert "password_hash" not in out

    (queue,) = data["queue"]
    assert queue["name"] == "q1" and queue["qtype"] == "fanout"
    (user,) = data["users"]
    assert (user["name"], user["email"]) == ("joe", "j@x")
    assert len(data["privilege"]) == len(RIGHTS)
    for row in (queue, user):
        for key in ("created", "lastupdated"):
            assert ISO_UTC.match(row[key]), row[key]
            assert datetime.fromisoformat(row[key]).utcoffset().total_seconds() == 0
    assert cli.ok("db", "json", "--indent", "2").stdout.count("\n") > 10
    assert json.loads(cli.ok("db", "json", "--indent", "2").stdout) == data


UNREACHABLE = "postgresql://u:pw@127.0.0.1:1/x"


@pytest.mark.parametrize(
    "args", [("db", "init"), ("ls", "queues"), ("add", "queue", "-n", "q1"), ("db", "json")]
)
def test_an_unreachable_database_is_exit_6_with_its_masked_url(
    args: tuple[str, ...], cli: Any
) -> None:
    line = one_line_error(cli("-d", UNREACHABLE, *args), 6)
    assert "postgresql://u:***@127.0.0.1:1/x" in line
    assert ":pw@" not in line


def test_with_debug_the_traceback_is_shown(flow: Any) -> None:
    result = flow("--debug", "-d", UNREACHABLE, "db", "init")
    assert result.code != 0
    assert "Traceback" in result.stderr and "ServiceUnavailable" in result.stderr


def test_a_file_that_is_not_a_database_is_exit_6(cli: Any, tmp_path: Any) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    for args in (("db", "init"), ("db", "json")):
        line = one_line_error(cli("-d", f"sqlite:///{junk}", *args), 6)
        assert str(junk) in line


def test_a_database_folder_that_cannot_be_made_is_exit_6(cli: Any, tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(cli("-d", f"sqlite:///{blocker}/sub/x.db", "db", "init"), 6)


@pytest.mark.parametrize("url", ["nonsense", "mysql://u:pw@h/db"])
def test_an_unsupported_database_url_is_a_usage_error(url: str, cli: Any) -> None:
    line = one_line_error(cli("-d", url, "db", "init"), 2)
    assert "unsupported database" in line and "pw" not in line


@pytest.mark.parametrize("url", ["postgresql://u:pw@h:port/db", "postgresql://u:pw@[::1/db"])
def test_an_unparsable_database_url_is_a_usage_error(url: str, cli: Any) -> None:
    line = one_line_error(cli("-d", url, "db", "init"), 2)
    assert "bad database URL" in line and ":pw@" not in line


def test_a_schema_missing_a_column_is_exit_6_naming_it(
    cli: Any, initialised_db: str, engine: Engine
) -> None:
    cli.ok("add", "queue", "-n", "q1")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE queue DROP COLUMN qtype"))
    for args in (("db", "json"), ("add", "queue", "-n", "q2")):
        line = one_line_error(cli(*args), 6)
        assert "schema does not match" in line and "qtype" in line, args
    assert scalar_rows(engine, "SELECT name FROM queue") == ["q1"]


def test_a_value_too_long_for_its_column_is_a_usage_error(
    cli: Any, initialised_db: str, engine: Engine
) -> None:
    if initialised_db.startswith("sqlite"):
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    line = one_line_error(cli("add", "queue", "-n", "q" * 300), 2)
    assert "does not fit" in line
    assert scalar_rows(engine, "SELECT name FROM queue") == []
