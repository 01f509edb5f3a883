"""Effective settings: command-line flags > environment (SHELLFLOW_*) > ini file > defaults.

Each value remembers where it came from so ``flow config show`` can explain it. With nothing
configured, everything lives under the shellflow home (the XDG data folder): a SQLite model
database and the embedded broker's socket, so a newcomer needs no server at all.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SECTION = "shellflow"
# Settings a user may set; ``home`` moves every default location at once.
KEYS = ("home", "db", "broker", "backend", "pubsub")
ENV = {key: f"SHELLFLOW_{key.upper()}" for key in KEYS}
ENV_INI = "SHELLFLOW_INI"

DESCRIPTIONS = {
    "home": "Folder holding the embedded database, broker and agent state",
    "db": "Model database URL",
    "broker": "Message broker URL",
    "backend": "Task result backend URL",
    "pubsub": "Live channel (pub/sub) URL",
}

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@]*:)(?P<secret>[^@/]*)(?P<tail>@)")


def mask_url(url: str) -> str:
    """Hide the password of a URL (``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``)."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}***{m['tail']}", url)


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "shellflow"


def default_ini_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "shellflow" / "shellflow.ini"


@dataclass(frozen=True)
class Setting:
    value: str
    source: str  # "flag", "env SHELLFLOW_DB", "ini /path", "default"


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one ``flow`` invocation."""

    values: Mapping[str, Setting]
    ini_path: Path
    debug: bool = False
    extras: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.values[key].value

    @property
    def home(self) -> Path:
        return Path(self["home"]).expanduser()

    @property
    def db(self) -> str:
        return self["db"]

    @property
    def broker(self) -> str:
        return self["broker"]

    @property
    def backend(self) -> str:
        return self["backend"]

    @property
    def pubsub(self) -> str:
        return self["pubsub"]

    def rows(self) -> list[tuple[str, str, str]]:
        """(key, masked value, source) for display."""
        return [(k, mask_url(self.values[k].value), self.values[k].source) for k in KEYS]


def _defaults(home: Path) -> dict[str, str]:
    embedded = f"redis+socket://{home / 'broker.sock'}"
    return {
        "home": str(home),
        "db": f"sqlite:///{home / 'shellflow.db'}",
        "broker": embedded,
        "backend": embedded,
        "pubsub": embedded,
    }


def read_ini(path: Path) -> dict[str, str]:
    """Read the ``[shellflow]`` section; a missing file is an empty configuration."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return {}
    except (OSError, configparser.Error) as exc:
        from shellflow.errors import UsageError

        raise UsageError(f"cannot read configuration file {path}: {exc}") from exc
    if not parser.has_section(SECTION):
        return {}
    return {k: v for k, v in parser.items(SECTION) if k in KEYS and v}


def write_ini(path: Path, values: Mapping[str, str]) -> None:
    """Write the settings that differ from nothing; the file is readable by its owner only."""
    parser = configparser.ConfigParser(interpolation=None)
    parser[SECTION] = {k: values[k] for k in KEYS if values.get(k)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        parser.write(handle)
    os.replace(tmp, path)


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    ini: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    debug: bool = False,
) -> Settings:
    """Resolve every setting by precedence: flags > environment > ini file > defaults."""
    env = os.environ if environ is None else environ
    flags = flags or {}
    if ini:
        ini_path, ini_source = Path(ini).expanduser(), "flag"
    elif env.get(ENV_INI):
        ini_path, ini_source = Path(env[ENV_INI]).expanduser(), f"env {ENV_INI}"
    else:
        ini_path, ini_source = default_ini_path(), "default"
    if ini and not ini_path.exists():
        from shellflow.errors import UsageError

        raise UsageError(f"configuration file {ini_path} does not exist")
    from_ini = read_ini(ini_path)

    def pick(key: str, fallback: str) -> Setting:
        if flags.get(key):
            return Setting(str(flags[key]), "flag")
        if env.get(ENV[key]):
            return Setting(env[ENV[key]], f"env {ENV[key]}")
        if from_ini.get(key):
            return Setting(from_ini[key], f"ini {ini_path}")
        return Setting(fallback, "default")

    home = pick("home", str(default_home()))
    defaults = _defaults(Path(home.value).expanduser())
    values = {"home": home} | {k: pick(k, defaults[k]) for k in KEYS if k != "home"}
    return Settings(values=values, ini_path=ini_path, debug=debug, extras={"ini": ini_source})
