"""Settings resolution: flags > environment > ini file > defaults, for every key.

These call ``load_settings`` directly with an explicit environment, so each layer is set
by the test and nothing comes from the machine running it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shellflow.config import (
    ENV,
    ENV_INI,
    KEYS,
    default_home,
    default_ini_path,
    load_settings,
    read_ini,
    write_ini,
)
from shellflow.errors import CallFailed, ExitCode, UsageError

URL_KEYS = [k for k in KEYS if k != "home"]


def _ini(path: Path, **values: str) -> Path:
    body = "".join(f"{k} = {v}\n" for k, v in values.items())
    path.write_text(f"[shellflow]\n{body}", encoding="utf-8")
    return path


@pytest.mark.parametrize("key", KEYS)
def test_each_layer_overrides_the_one_below(key: str, tmp_path: Path) -> None:
    ini = _ini(tmp_path / "s.ini", **{key: f"ini-{key}"})
    env = {ENV[key]: f"env-{key}"}
    flag = {key: f"flag-{key}"}

    # ini beats the default
    got = load_settings(ini=ini, environ={}).values[key]
    assert (got.value, got.source) == (f"ini-{key}", f"ini {ini}")
    # environment beats the ini
    got = load_settings(ini=ini, environ=env).values[key]
    assert (got.value, got.source) == (f"env-{key}", f"env {ENV[key]}")
    # a flag beats the environment (home has no flag on the command line, but the
    # resolution is the same for every key)
    got = load_settings(flag, ini=ini, environ=env).values[key]
    assert (got.value, got.source) == (f"flag-{key}", "flag")


@pytest.mark.parametrize("key", KEYS)
def test_empty_values_fall_through_to_the_next_layer(key: str, tmp_path: Path) -> None:
    ini = _ini(tmp_path / "s.ini", **{key: f"ini-{key}"})
    got = load_settings({key: ""}, ini=ini, environ={ENV[key]: ""}).values[key]
    assert (got.value, got.source) == (f"ini-{key}", f"ini {ini}")


def test_defaults_live_under_the_home(tmp_path: Path) -> None:
    home = tmp_path / "h"
    settings = load_settings(environ={ENV["home"]: str(home)})
    assert settings.values["home"].source == f"env {ENV['home']}"
    assert settings.db == f"sqlite:///{home / 'shellflow.db'}"
    embedded = f"redis+socket://{home / 'broker.sock'}"
    assert (settings.broker, settings.backend, settings.pubsub) == (embedded,) * 3
    assert {settings.values[k].source for k in URL_KEYS} == {"default"}


def test_home_from_the_ini_moves_the_defaults(tmp_path: Path) -> None:
    ini = _ini(tmp_path / "s.ini", home=str(tmp_path / "elsewhere"))
    settings = load_settings(ini=ini, environ={})
    assert settings.home == tmp_path / "elsewhere"
    assert settings.db == f"sqlite:///{tmp_path / 'elsewhere' / 'shellflow.db'}"


def test_default_home_is_the_xdg_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV["home"])
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.home == tmp_path / "data" / "shellflow" == default_home()
    assert settings.values["home"].source == "default"
    assert settings.db == f"sqlite:///{tmp_path / 'data' / 'shellflow' / 'shellflow.db'}"


@pytest.mark.parametrize("xdg", [None, "relative/path"])
def test_without_a_usable_xdg_folder_home_is_under_local_share(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The XDG spec says a relative XDG_* value is invalid and must be ignored.
    monkeypatch.setenv("HOME", str(tmp_path))
    for var, value in (("XDG_DATA_HOME", xdg), ("XDG_CONFIG_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(var)
        else:
            monkeypatch.setenv(var, value)
    assert default_home() == tmp_path / ".local" / "share" / "shellflow"
    assert default_ini_path() == tmp_path / ".config" / "shellflow" / "shellflow.ini"


def test_ini_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_flag = _ini(tmp_path / "flag.ini", db="sqlite:///flag")
    from_env = _ini(tmp_path / "env.ini", db="sqlite:///env")
    default_ini_path().parent.mkdir(parents=True)
    default = _ini(default_ini_path(), db="sqlite:///default")

    settings = load_settings(environ={})
    assert (settings.db, settings.ini_path, settings.extras["ini"]) == (
        "sqlite:///default", default, "default")  # fmt: skip
    settings = load_settings(environ={ENV_INI: str(from_env)})
    assert (settings.db, settings.extras["ini"]) == ("sqlite:///env", f"env {ENV_INI}")
    settings = load_settings(ini=from_flag, environ={ENV_INI: str(from_env)})
    assert (settings.db, settings.extras["ini"]) == ("sqlite:///flag", "flag")


def test_a_missing_ini_named_by_flag_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_settings(ini=tmp_path / "nope.ini", environ={})
    assert caught.value.exit_code == ExitCode.USAGE
    assert "nope.ini" in caught.value.message
    # ...unless the caller is about to create it (``flow -i NEW.ini --config``)
    settings = load_settings(ini=tmp_path / "nope.ini", environ={}, ini_must_exist=False)
    assert settings.ini_path == tmp_path / "nope.ini"


def test_a_missing_default_ini_is_an_empty_configuration(tmp_path: Path) -> None:
    assert not default_ini_path().exists()
    assert read_ini(default_ini_path()) == {}
    assert load_settings(environ={}).values["db"].source == "default"
    # SHELLFLOW_INI may name a file still to be written by ``flow --config``
    settings = load_settings(environ={ENV_INI: str(tmp_path / "later.ini")})
    assert settings.ini_path == tmp_path / "later.ini"
    assert settings.values["db"].source == "default"


@pytest.mark.parametrize(
    "content",
    [
        "garbage\n[x",  # no section header
        "[shellflow]\ndb = a\ndb = b\n",  # duplicate option
        "[shellflow]\n  indented continuation first\n",
    ],
)
def test_a_malformed_ini_is_one_line_usage_error(content: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_settings(ini=bad, environ={})
    message = caught.value.message
    assert str(bad) in message
    assert "\n" not in message


def test_an_undecodable_ini_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_bytes(b"[shellflow]\ndb = \xff\xfe\n")
    with pytest.raises(UsageError):
        load_settings(ini=bad, environ={})


def test_unknown_keys_and_other_sections_are_ignored(tmp_path: Path) -> None:
    ini = tmp_path / "s.ini"
    ini.write_text("[other]\ndb = no\n[shellflow]\ncolour = red\nbroker = amqp://b\n")
    assert read_ini(ini) == {"broker": "amqp://b"}


def test_write_ini_round_trips_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "shellflow.ini"
    values = {"home": "/h", "db": "postgresql://u:p%40ss@h/db", "broker": "amqp://x",
              "backend": "redis://r", "pubsub": "redis://r/1"}  # fmt: skip
    write_ini(path, values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_ini(path) == values
    assert not list(path.parent.glob("*.tmp"))


def test_write_ini_narrows_a_wider_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "shellflow.ini"
    stale = tmp_path / "shellflow.ini.tmp"
    stale.write_text("old")
    os.chmod(stale, 0o644)
    path.write_text("[shellflow]\n")
    os.chmod(path, 0o644)
    write_ini(path, {"db": "sqlite:///x"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_ini_failure_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CallFailed) as caught:
        write_ini(blocker / "shellflow.ini", {"db": "sqlite:///x"})
    assert "\n" not in caught.value.message


def test_rows_mask_passwords_and_name_sources(tmp_path: Path) -> None:
    settings = load_settings(
        {"db": "postgresql://u:secret@h/db"}, environ={ENV["broker"]: "amqp://g:pw@b//"}
    )
    rows = {key: (value, source) for key, value, source in settings.rows()}
    assert rows["db"] == ("postgresql://u:***@h/db", "flag")
    assert rows["broker"] == ("amqp://g:***@b//", f"env {ENV['broker']}")
    assert list(rows) == list(KEYS)
