"""``flow config show`` and ``flow --config`` as a user meets them."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from shellflow.commands import config_cmd
from shellflow.config import default_ini_path, read_ini


def _one_line_error(result: Any, code: int) -> str:
    assert result.code == code, (result.code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _table(stdout: str) -> dict[str, tuple[str, str]]:
    rows = [line.split("\t") for line in stdout.splitlines()]
    assert all(len(row) == 3 for row in rows), stdout
    return {setting: (value, source) for setting, value, source in rows}


def test_show_names_each_setting_its_masked_value_and_source(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    ini = tmp_path / "s.ini"
    ini.write_text("[shellflow]\nbackend = redis://:inipw@r:6379/1\n")
    monkeypatch.setenv("SHELLFLOW_DB", "postgresql://u:envpw@h/db")
    out = cli.ok("-i", str(ini), "--broker", "amqp://g:flagpw@b//", "config", "show").stdout
    rows = _table(out)
    assert rows == {
        "home": (str(isolated_env), "env SHELLFLOW_HOME"),
        "db": ("postgresql://u:***@h/db", "env SHELLFLOW_DB"),
        "broker": ("amqp://g:***@b//", "flag"),
        "backend": ("redis://:***@r:6379/1", f"ini {ini}"),
        "pubsub": (f"redis+socket://{isolated_env / 'broker.sock'}", "default"),
        "ini": (str(ini), "flag"),
    }
    assert "pw" not in out


def test_show_json_is_one_object_per_setting(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELLFLOW_DB", "postgresql://u:envpw@h/db")
    lines = cli.ok("config", "show", "--json").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["setting"] for r in rows] == ["home", "db", "broker", "backend", "pubsub", "ini"]
    assert rows[1] == {"setting": "db", "value": "postgresql://u:***@h/db",
                       "source": "env SHELLFLOW_DB"}  # fmt: skip
    assert rows[5] == {"setting": "ini", "value": str(default_ini_path()), "source": "default"}


def test_missing_ini_flag_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    line = _one_line_error(cli("-i", str(tmp_path / "nope.ini"), "config", "show"), 2)
    assert "nope.ini" in line


def test_malformed_ini_is_one_line_without_traceback(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("garbage\n[x")
    line = _one_line_error(cli("-i", str(bad), "config", "show"), 2)
    assert str(bad) in line


def test_malformed_ini_from_environment_fails_every_command(flow: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[shellflow]\ndb = a\ndb = b\n")
    result = flow("ls", "queues", env={"SHELLFLOW_INI": str(bad)})
    line = _one_line_error(result, 2)
    assert str(bad) in line


def test_config_without_a_terminal_writes_effective_values_without_asking(
    flow: Any, tmp_path: Path, isolated_env: Path
) -> None:
    ini = default_ini_path()
    env = {"SHELLFLOW_BROKER": "amqp://g:pw@b//"}
    result = flow("--db", "postgresql://u:secret@h/db", "--config", input="x\ny\n", env=env)
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert str(ini) in result.stderr and "[" not in result.stderr  # no prompt shown
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    assert read_ini(ini) == {
        "home": str(isolated_env),
        "db": "postgresql://u:secret@h/db",
        "broker": "amqp://g:pw@b//",
        "backend": f"redis+socket://{isolated_env / 'broker.sock'}",
        "pubsub": f"redis+socket://{isolated_env / 'broker.sock'}",
    }
    # A later invocation, with nothing on its command line, reads the file.
    rows = _table(flow.ok("config", "show").stdout)
    assert rows["db"] == ("postgresql://u:***@h/db", f"ini {ini}")
    assert rows["broker"] == ("amqp://g:***@b//", f"ini {ini}")


def test_config_short_flag_and_ini_flag_write_where_told(cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "mine.ini"
    target.write_text("")  # -i insists on an existing file for every other command
    cli.ok("-i", str(target), "-d", "sqlite:///x.db", "-c")
    assert read_ini(target)["db"] == "sqlite:///x.db"
    assert not default_ini_path().exists()


def test_config_can_create_the_ini_named_by_flag(cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "new" / "mine.ini"
    cli.ok("-i", str(target), "-d", "sqlite:///x.db", "--config")
    assert read_ini(target)["db"] == "sqlite:///x.db"


def test_config_on_a_terminal_asks_for_each_setting(
    cli: Any, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    monkeypatch.setattr(config_cmd, "stdin_is_tty", lambda: True)
    monkeypatch.setenv("SHELLFLOW_DB", "postgresql://u:oldpw@h/db")
    # home: keep; db: new URL; broker: keep; backend: new; pubsub: keep
    answers = "\npostgresql://v:newpw@h2/db2\n\nredis://r:6379/2\n\n"
    result = cli.ok("--config", input=answers)
    assert result.stdout == ""
    # the current database URL is offered as the default, its password masked
    assert "[postgresql://u:***@h/db]" in result.stderr
    assert "oldpw" not in result.stderr
    embedded = f"redis+socket://{isolated_env / 'broker.sock'}"
    assert read_ini(default_ini_path()) == {
        "home": str(isolated_env),
        "db": "postgresql://v:newpw@h2/db2",
        "broker": embedded,
        "backend": "redis://r:6379/2",
        "pubsub": embedded,
    }


def test_a_new_home_on_the_terminal_moves_the_defaults_offered_next(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config_cmd, "stdin_is_tty", lambda: True)
    new_home = tmp_path / "newhome"
    cli.ok("--config", input=f"{new_home}\n\n\n\n\n")
    values = read_ini(default_ini_path())
    assert values["home"] == str(new_home)
    assert values["db"] == f"sqlite:///{new_home / 'shellflow.db'}"
    assert values["pubsub"] == f"redis+socket://{new_home / 'broker.sock'}"
