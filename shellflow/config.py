"""Effective settings: command-line flags > environment (SHELLFLOW_*) > ini file > defaults.

Each value remembers where it came from so ``flow config show`` can explain it. With nothing
configured, everything lives under the shellflow home (the XDG data folder): a SQLite model
database and the embedded broker's socket, so a newcomer needs no server at all.

Kept light (no configparser until an ini file is read): every ``flow`` invocation loads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shellflow.redact import mask_url

SECTION = "shellflow"
# Settings a user may set; ``home`` moves every default location at once.
KEYS = ("home", "db", "broker", "backend", "pubsub")
ENV = {key: f"SHELLFLOW_{key.upper()}" for key in KEYS}
ENV_INI = "SHELLFLOW_INI"
# Read from the ini file only (no flag, no environment variable): the repositories this
# deployment trusts when its database holds no list (``shellflow.model.repos``).
REPOS_ALLOW = "repos.allow"

DESCRIPTIONS = {
    "home": "Folder holding the embedded database, broker and agent state",
    "db": "Model database URL",
    "broker": "Message broker URL",
    "backend": "Task result backend URL",
    "pubsub": "Live channel (pub/sub) URL",
}


def _xdg(var: str, fallback: str) -> Path:
    """An XDG base folder; relative values are invalid by the XDG spec and ignored."""
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


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
    # The ini file's ``repos.allow`` as written (patterns split by spaces, commas or lines).
    repos_allow: str | None = None

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


def defaults(home: Path) -> dict[str, str]:
    """Where everything lives when nothing is configured: under ``home``, no server needed."""
    embedded = f"redis+socket://{home / 'broker.sock'}"
    return {
        "home": str(home),
        "db": f"sqlite:///{home / 'shellflow.db'}",
        "broker": embedded,
        "backend": embedded,
        "pubsub": embedded,
    }


def _one_line(exc: BaseException) -> str:
    """configparser's messages span lines; errors must stay on one."""
    return " ".join(str(exc).split())


def read_ini(path: Path) -> dict[str, str]:
    """Read the ``[shellflow]`` section's settings; a missing file is an empty configuration."""
    return {k: v for k, v in _read_section(path).items() if k in KEYS and v}


def _read_section(path: Path) -> dict[str, str]:
    """Every key of the ``[shellflow]`` section (settings and ``repos.allow``)."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        from shellflow.errors import UsageError

        raise UsageError(f"cannot read configuration file {path}: {_one_line(exc)}") from exc
    if not parser.has_section(SECTION):
        return {}
    return dict(parser.items(SECTION))


def write_ini(path: Path, values: Mapping[str, str]) -> None:
    """Write the given settings atomically; the file is readable by its owner only (0600),
    since URLs may carry passwords. The file's ``repos.allow`` is kept as it was."""
    import configparser

    from shellflow.errors import CallFailed, UsageError

    try:
        kept = _read_section(path).get(REPOS_ALLOW)
    except UsageError:  # an unreadable file is replaced whole, as before
        kept = None
    parser = configparser.ConfigParser(interpolation=None)
    parser[SECTION] = {k: values[k] for k in KEYS if values.get(k)}
    if kept:
        parser[SECTION][REPOS_ALLOW] = kept
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a stale .tmp left by a crash may have kept wider permissions
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            parser.write(handle)
        os.replace(tmp, path)
    except OSError as exc:
        raise CallFailed(f"cannot write configuration file {path}: {_one_line(exc)}") from exc


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the system cannot even look up (too long) does not."""
    try:
        return path.exists()
    except OSError:
        return False


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    ini: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    debug: bool = False,
    ini_must_exist: bool = True,
) -> Settings:
    """Resolve every setting by precedence: flags > environment > ini file > defaults.

    An ini file named with ``-i`` must exist (a typo must not silently mean "defaults"),
    unless ``ini_must_exist`` is false, as for ``flow -i NEW.ini --config`` which creates it.
    The default file, or one named by SHELLFLOW_INI, may be absent.
    """
    env = os.environ if environ is None else environ
    flags = flags or {}
    if ini:
        ini_path, ini_source = Path(ini).expanduser(), "flag"
    elif env.get(ENV_INI):
        ini_path, ini_source = Path(env[ENV_INI]).expanduser(), f"env {ENV_INI}"
    else:
        ini_path, ini_source = default_ini_path(), "default"
    if ini and ini_must_exist and not _exists(ini_path):
        from shellflow.errors import UsageError

        raise UsageError(f"configuration file {ini_path} does not exist")
    section = _read_section(ini_path)
    from_ini = {k: v for k, v in section.items() if k in KEYS and v}

    def pick(key: str, fallback: str) -> Setting:
        if flags.get(key):
            return Setting(str(flags[key]), "flag")
        if env.get(ENV[key]):
            return Setting(env[ENV[key]], f"env {ENV[key]}")
        if from_ini.get(key):
            return Setting(from_ini[key], f"ini {ini_path}")
        return Setting(fallback, "default")

    home = pick("home", str(default_home()))
    fallback = defaults(Path(home.value).expanduser())
    values = {"home": home} | {k: pick(k, fallback[k]) for k in KEYS if k != "home"}
    return Settings(
        values=values, ini_path=ini_path, debug=debug, extras={"ini": ini_source},
        repos_allow=section.get(REPOS_ALLOW) or None,
    )  # fmt: skip
