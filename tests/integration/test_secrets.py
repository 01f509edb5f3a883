"""Secrets stay secret (issue 17, point 4): a password inside a URL is masked wherever
shellflow shows or logs it, compose files carry a reference instead, and password options
take a prompt and stdin and warn when given as an argument."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from objects_support import show, sql

from shellflow.model.passwords import verify_password

SECRET = "tok3n-SECRET"
REPO = f"https://ci:{SECRET}@git.example.com/team/repo.git"


def _outputs(cli: Any, *commands: tuple[str, ...]) -> str:
    texts = []
    for args in commands:
        result = cli.ok(*args)
        texts += [result.stdout, result.stderr]
    return "\n".join(texts)


def test_a_git_token_is_shown_nowhere(
    cli: Any, initialised_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("add", "processor", "-n", "proc-1", "-g", REPO, "-m", "pyfi.processors.sample")
    # What git says when the clone fails quotes the URL: the agent stores it as the reason.
    from shellflow.engine.fleet.deploy import DeployError, Source, checkout
    from shellflow.engine.fleet.rows import note, set_status
    from shellflow.model.db import get_engine

    (pid,) = sql(initialised_db, "SELECT id FROM processor WHERE name = 'proc-1'")[0]
    with pytest.raises(DeployError) as failed:  # no server on port 1: what the agent gets
        checkout(tmp_path / "home", Source(f"https://ci:{SECRET}@127.0.0.1:1/team/repo.git"))
    set_status(get_engine(initialised_db), pid, "error", str(failed.value))
    note(get_engine(initialised_db), pid, f"fetch of {REPO} failed")
    stored = sql(initialised_db, "SELECT status_reason FROM processor")
    stored += sql(initialised_db, "SELECT text FROM log")
    assert SECRET not in json.dumps(stored) and "fetch of https://ci:***@" in json.dumps(stored)
    assert sql(initialised_db, "SELECT gitrepo FROM processor") == [(REPO,)]  # kept to clone
    shown = _outputs(
        cli,
        ("ls", "processors"), ("ls", "processors", "--json"), ("ls", "processor", "-n", "proc-1"),
        ("ls", "processor", "-n", "proc-1", "--json"), ("db", "json"), ("compose", "export"),
    )  # fmt: skip
    assert SECRET not in shown
    assert "https://ci:***@git.example.com/team/repo.git" in shown
    assert "https://ci:***@127.0.0.1:1/" in show(cli, "processor", "proc-1")["status_reason"]
    # The dashboard reads the same views.
    from shellflow.model.listing import reader
    from shellflow.tui.data.network import read_network

    with reader(initialised_db) as conn:
        assert SECRET not in repr(read_network(conn))


def test_compose_exports_a_reference_that_up_fills_from_the_environment(
    cli: Any, initialised_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("add", "processor", "-n", "proc-1", "-g", REPO, "-m", "pyfi.processors.sample")
    exported = cli.ok("compose", "export").stdout
    assert SECRET not in exported
    assert "gitrepo: https://ci:${SHELLFLOW_SECRET_PROC_1}@git.example.com/team/repo.git" in (
        exported
    )
    path = tmp_path / "network.yaml"
    path.write_text(exported)
    cli.ok("delete", "processor", "-n", "proc-1")
    monkeypatch.delenv("SHELLFLOW_SECRET_PROC_1", raising=False)
    refused = cli("compose", "up", str(path))
    assert refused.code == 2
    assert refused.stderr.count("\n") == 1 and "SHELLFLOW_SECRET_PROC_1" in refused.stderr
    assert sql(initialised_db, "SELECT count(*) FROM processor") == [(0,)]  # nothing stored
    monkeypatch.setenv("SHELLFLOW_SECRET_PROC_1", SECRET)
    diff = cli("compose", "diff", str(path))
    assert diff.code == 0 and "proc-1" in diff.stdout and SECRET not in diff.stdout + diff.stderr
    up = cli.ok("compose", "up", str(path))
    assert SECRET not in up.stdout + up.stderr
    assert sql(initialised_db, "SELECT gitrepo FROM processor") == [(REPO,)]
    assert cli.ok("compose", "export").stdout == exported  # the same text again
    assert "nothing to change" in cli.ok("compose", "up", str(path)).stderr


def test_the_live_channel_warning_masks_its_password(caplog: pytest.LogCaptureFixture) -> None:
    """A pub/sub URL with a password, on a port where no server listens: the warning
    names it masked."""
    from shellflow.engine.records.events import Publisher, Stored

    publisher = Publisher(f"redis://:{SECRET}@127.0.0.1:1/0", "room")
    with caplog.at_level(logging.WARNING, logger="shellflow"):
        publisher.publish([Stored("i", "c", "s", None, "log", datetime.now(UTC), "line")])
    publisher.close()
    assert "live events unavailable at redis://:***@" in caplog.text
    assert SECRET not in caplog.text


def test_log_lines_and_their_tracebacks_are_masked() -> None:
    import io

    from shellflow.redact import MaskingFormatter, mask_handlers

    stream = io.StringIO()
    logger = logging.getLogger("shellflow.test_secrets")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    mask_handlers(logger)
    try:
        try:
            raise RuntimeError(f"cannot reach {REPO}")
        except RuntimeError:
            logger.exception("deploying from %s", REPO)
    finally:
        logger.removeHandler(handler)
    assert "deploying from https://ci:***@" in stream.getvalue()
    assert "RuntimeError: cannot reach https://ci:***@" in stream.getvalue()
    assert SECRET not in stream.getvalue()
    record = logging.LogRecord("x", logging.INFO, "f", 1, "amqp://u:%s@h//", (SECRET,), None)
    assert SECRET not in MaskingFormatter("%(message)s").format(record)


def _hash(url: str, processor: str) -> str:
    rows = sql(url, "SELECT w.hash FROM processor p JOIN passwords w ON w.id = p.password_id"
                    " WHERE p.name = :n", n=processor)  # fmt: skip
    assert len(rows) == 1
    return str(rows[0][0])


def test_a_processor_password_by_stdin_or_prompt_and_a_warning_for_an_argument(
    cli: Any, initialised_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add = ("add", "processor", "-g", "repo", "-m", "mod", "-n")
    quiet = cli.ok(*add, "p1", "--password-stdin", input="from-stdin\n")
    assert "warning" not in quiet.stderr
    assert verify_password(_hash(initialised_db, "p1"), "from-stdin")
    loud = cli.ok(*add, "p2", "-p", "on-the-line")
    warnings = [line for line in loud.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "--password-stdin" in warnings[0]
    assert "on-the-line" not in loud.stderr
    assert verify_password(_hash(initialised_db, "p2"), "on-the-line")
    no_terminal = cli(*add, "p3", "--password")
    assert no_terminal.code == 2 and "--password-stdin" in no_terminal.stderr
    both = cli(*add, "p3", "-p", "x", "--password-stdin", input="y\n")
    assert both.code == 2
    monkeypatch.setattr("shellflow.commands.output.stdin_is_tty", lambda: True)
    asked = cli.ok(*add, "p3", "--password", input="typed\ntyped\n")
    assert "typed" not in asked.stdout + asked.stderr  # not echoed
    assert verify_password(_hash(initialised_db, "p3"), "typed")
    cli.ok("update", "processor", "-n", "p3", "--password", input="again\nagain\n")
    assert verify_password(_hash(initialised_db, "p3"), "again")


def test_a_user_password_warns_as_an_argument_only(cli: Any, initialised_db: str) -> None:
    loud = cli.ok("add", "user", "-n", "joe", "-e", "joe@xyz", "-p", "pw-arg")
    assert loud.stderr.count("warning") == 1
    quiet = cli.ok("update", "user", "-n", "joe", "--password-stdin", input="pw2\n")
    assert "warning" not in quiet.stderr


def test_a_token_as_the_user_name_is_exported_as_a_reference_too(
    cli: Any, initialised_db: str
) -> None:
    token = "ghp_" + SECRET * 3
    cli.ok("add", "processor", "-n", "p", "-g", f"https://{token}@github.com/o/r.git", "-m", "m")
    shown = _outputs(cli, ("ls", "processors"), ("db", "json"), ("compose", "export"))
    assert token not in shown
    assert "gitrepo: https://${SHELLFLOW_SECRET_P}@github.com/o/r.git" in shown
