"""The environment a processor's build and workers get, and the settings' hand-over file."""

from __future__ import annotations

import os
import stat

import pytest

from shellflow.engine.worker.credentials import (
    forget_environment,
    hand_over,
    scrubbed,
    secrets_of,
    take_over,
)

SETTINGS = {
    "home": "/srv/shellflow",
    "db": "postgresql://flow:s3cret-db@db.example/flow",
    "broker": "amqp://flow:s3cret-mq@mq.example//",
    "backend": "redis://:s3cret-redis@cache.example/0",
    "pubsub": "redis://cache.example/1?password=s3cret-q",
}


def test_secrets_are_the_urls_and_their_passwords_never_the_home() -> None:
    found = secrets_of(SETTINGS)
    assert {"s3cret-db", "s3cret-mq", "s3cret-redis", "s3cret-q", SETTINGS["db"]} <= set(found)
    assert SETTINGS["home"] not in found


def test_scrubbed_drops_the_settings_and_whatever_holds_a_secret_and_keeps_the_rest() -> None:
    env = {
        "PATH": "/srv/shellflow/venvs/x/bin:/usr/bin", "HOME": "/root", "PIP_NO_INDEX": "1",
        "https_proxy": "http://proxy:3128", "SHELLFLOW_SPOOL_MAX_BYTES": "1000",
        "SHELLFLOW_DB": "sqlite:///x.db", "SHELLFLOW_BROKER": "x", "SHELLFLOW_BACKEND": "x",
        "SHELLFLOW_PUBSUB": "x", "SHELLFLOW_HOME": "/srv", "SHELLFLOW_INI": "/etc/sf.ini",
        "DATABASE_URL": SETTINGS["db"], "CELERY_BROKER": "pyamqp://flow:s3cret-mq@mq//",
        "NOTE": "the password is s3cret-redis",
    }  # fmt: skip
    kept = scrubbed(env, secrets_of(SETTINGS))
    assert sorted(kept) == [
        "HOME", "PATH", "PIP_NO_INDEX", "SHELLFLOW_SPOOL_MAX_BYTES", "https_proxy"
    ]  # fmt: skip


def test_hand_over_gives_a_nameless_0600_file_that_take_over_reads_and_closes(
    tmp_path: os.PathLike[str],
) -> None:
    fd = hand_over(SETTINGS, tmp_path)  # type: ignore[arg-type]
    info = os.fstat(fd)
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_nlink == 0
    assert os.listdir(tmp_path) == []  # nothing to find by name
    assert take_over(fd) == SETTINGS
    with pytest.raises(OSError):
        os.fstat(fd)  # closed


def test_hand_over_takes_settings_only(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ValueError, match="not settings"):
        hand_over({"token": "x"}, tmp_path)  # type: ignore[arg-type]


def test_forget_environment_clears_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELLFLOW_DB", SETTINGS["db"])
    monkeypatch.setenv("OTHER_URL", SETTINGS["broker"])
    monkeypatch.setenv("KEPT", "yes")
    forget_environment(secrets_of(SETTINGS))
    assert "SHELLFLOW_DB" not in os.environ and "OTHER_URL" not in os.environ
    assert os.environ["KEPT"] == "yes"


def test_the_agent_can_make_itself_undumpable() -> None:
    """``flow agent start`` does so: a same-user child cannot read its /proc/PID/environ."""
    import subprocess
    import sys

    code = (
        "import ctypes, ctypes.util\n"
        "from shellflow.engine.fleet.launch import PR_GET_DUMPABLE, keep_from_children\n"
        "libc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
        "print(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), keep_from_children(),"
        " libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "True", "0"]
