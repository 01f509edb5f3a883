"""The client's session file: 0600, one entry per database, never a password; a damaged
file holds no session (log in again) rather than failing every command."""

from __future__ import annotations

import itertools
import stat
from datetime import UTC, datetime, timedelta

import pytest

from shellflow.model import credentials
from shellflow.model.logins import delay


def test_sessions_are_kept_per_database_in_a_private_file() -> None:
    until = datetime.now(UTC) + timedelta(hours=1)
    path = credentials.write_session("sqlite:///a.db", "sf_aaa", "joe", until)
    credentials.write_session("postgresql://u:pw@h/db", "sf_bbb", "ann", None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "a.db" not in text and "pw@h" not in text  # databases are named by a digest
    assert credentials.read_session("sqlite:///a.db") == {
        "token": "sf_aaa", "user": "joe", "expires": until.isoformat()
    }  # fmt: skip
    assert credentials.presented_token("sqlite:///a.db") == ("sf_aaa", "login")
    assert credentials.presented_token("sqlite:///other.db") is None
    assert credentials.forget_session("sqlite:///a.db") is not None
    assert credentials.read_session("sqlite:///a.db") is None
    assert credentials.read_session("postgresql://u:pw@h/db") is not None
    credentials.forget_session("postgresql://u:pw@h/db")
    assert not path.exists()  # the last session gone, the file goes too


def test_a_damaged_session_file_holds_no_session() -> None:
    path = credentials.session_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert credentials.read_session("sqlite:///a.db") is None
    credentials.write_session("sqlite:///a.db", "sf_x", "joe", None)  # and is replaced
    assert credentials.read_session("sqlite:///a.db") is not None


def test_the_environment_token_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.write_session("sqlite:///a.db", "sf_file", "joe", None)
    monkeypatch.setenv("SHELLFLOW_TOKEN", "sf_env\n")
    assert credentials.presented_token("sqlite:///a.db") == ("sf_env", "SHELLFLOW_TOKEN")


def test_tokens_are_random_and_stored_as_digests() -> None:
    tokens = {credentials.new_token() for _ in range(50)}
    assert len(tokens) == 50
    token = tokens.pop()
    assert token.startswith("sf_") and len(token) == 3 + 43  # 32 bytes, URL-safe base64
    assert credentials.digest(token) != token and len(credentials.digest(token)) == 64


def test_each_failure_doubles_the_wait_up_to_a_bound() -> None:
    waits = [delay(n) for n in range(0, 12)]
    assert waits[0] == 0
    assert all(b == min(2 * a, 30.0) for a, b in itertools.pairwise(waits[1:]))
    assert max(waits) == 30.0 and delay(10**6) == 30.0
