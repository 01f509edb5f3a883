"""The repository allowlist (``repos.allow``, issue 17) on both databases: set, read and
removed by ``flow config``, checked by ``flow add|update processor``, ``flow compose up``
and the Python API; and ``--commit`` checked against its repository.

On PostgreSQL nothing is allowed until a list is set; the test databases are made with
``*`` (tests/templates.py), so the tests of the default unset it first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shellflow.model.repos import RepoNotAllowed, forms, permits
from tests.engine.repos import git, new_repo

MODULE = "pyfi.processors.sample"
EVIL = "https://user:S3CRET-TOKEN@github.com/evil/x.git"


def add(cli: Any, name: str, repo: str, *more: str) -> Any:
    return cli("add", "processor", "-n", name, "-g", repo, "-m", MODULE, *more)


def refused(result: Any) -> str:
    """The one line of a refusal (exit 5), which never shows the URL's credentials."""
    assert result.code == 5, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "S3CRET" not in result.stderr
    return str(lines[0])


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def test_urls_are_compared_in_one_canonical_form(tmp_path: Path) -> None:
    assert forms("https://u:T@GitHub.com/myorg/x.git/") == {"https://github.com/myorg/x"}
    assert (
        forms(f"file://{tmp_path}/r")
        == forms(str(tmp_path / "r"))
        == forms(f"{tmp_path}/../{tmp_path.name}/r")
    )
    assert forms("git@github.com:myorg/r.git") == {"ssh://github.com/myorg/r"}
    myorg = ["https://github.com/myorg/*"]
    assert permits(myorg, "https://tok@github.com/myorg/x")
    assert not permits(myorg, "https://github.com/myorg/../evil/x")
    assert not permits(myorg, "https://github.com/myorg/%2e%2e/evil/x")
    assert not permits(myorg, "https://github.com@evil.example/myorg/x")
    assert not permits(myorg, "https://github.com.evil.example/myorg/x")
    assert permits(["file://*"], str(tmp_path)) and permits(
        [f"{tmp_path}/*"], f"file://{tmp_path}/a"
    )
    assert not permits([f"{tmp_path}/*"], "/elsewhere/a")


def test_the_default_allows_everything_embedded_and_nothing_on_postgresql(
    cli: Any, initialised_db: str
) -> None:
    cli.ok("config", "unset", "repos.allow")  # the test database's "*"
    got = cli.ok("config", "get", "repos.allow")
    assert got.stdout == ""
    result = add(cli, "p", EVIL)
    if is_postgresql(initialised_db):
        line = refused(result)
        assert "github.com/evil/x" in line and "repos.allow is not set" in line, line
        assert "flow config set repos.allow" in line
        assert "no repository is allowed" in got.stderr
    else:
        assert result.code == 0, result.stderr
        assert "every repository is allowed" in got.stderr


def test_a_set_list_refuses_other_repositories_everywhere(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    local = tmp_path / "srv"
    cli.ok("config", "set", "repos.allow", "https://github.com/myorg/*", f"{local}/*")
    assert cli.ok("config", "get", "repos.allow").stdout.splitlines() == [
        "https://github.com/myorg/*", f"{local}/*",
    ]  # fmt: skip
    line = refused(add(cli, "p", EVIL))
    assert f"'https://github.com/myorg/*', '{local}/*'" in line, line
    assert "flow config set repos.allow" in line
    cli.ok("add", "processor", "-n", "ok1", "-g", "https://tok@github.com/myorg/x", "-m", MODULE)
    cli.ok("add", "processor", "-n", "ok2", "-g", f"file://{local}/a", "-m", MODULE)
    cli.ok("add", "processor", "-n", "ok3", "-g", f"{local}/b", "-m", MODULE)
    refused(cli("update", "processor", "-n", "ok1", "-g", EVIL))
    assert json.loads(cli.ok("ls", "processor", "-n", "ok1", "--json").stdout)["gitrepo"] == (
        "https://tok@github.com/myorg/x"
    )

    compose = tmp_path / "net.yaml"
    compose.write_text(f"version: 1\nprocessors:\n  bad: {{gitrepo: '{EVIL}', module: m}}\n")
    line = refused(cli("compose", "up", str(compose)))
    assert "net.yaml:3" in line and "not allowed" in line, line

    from shellflow.client.api import Processor
    from shellflow.config import load_settings

    with pytest.raises(RepoNotAllowed, match="not allowed"):
        Processor("api", gitrepo=EVIL, module=MODULE, settings=load_settings())
    names = [
        r["name"] for r in map(json.loads, cli.ok("ls", "processors", "--json").stdout.splitlines())
    ]
    assert names == ["ok1", "ok2", "ok3"]

    cli.ok("config", "unset", "repos.allow")
    assert (add(cli, "p", EVIL).code == 5) is is_postgresql(initialised_db)


def test_the_database_list_wins_over_the_ini_file(
    cli: Any, initialised_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = tmp_path / "shellflow.ini"
    ini.write_text("[shellflow]\nrepos.allow = https://github.com/inifriend/*\n  /x/*\n")
    monkeypatch.setenv("SHELLFLOW_INI", str(ini))
    cli.ok("config", "unset", "repos.allow")
    assert cli.ok("config", "get", "repos.allow").stdout.split() == [
        "https://github.com/inifriend/*", "/x/*",
    ]  # fmt: skip
    cli.ok("add", "processor", "-n", "p1", "-g", "https://github.com/inifriend/a", "-m", MODULE)
    refused(add(cli, "p2", EVIL))
    cli.ok("config", "set", "repos.allow", "https://github.com/dbfriend/*")
    refused(add(cli, "p3", "https://github.com/inifriend/b"))
    cli.ok("add", "processor", "-n", "p4", "-g", "https://github.com/dbfriend/a", "-m", MODULE)


def test_setting_the_list_is_checked(cli: Any, initialised_db: str) -> None:
    relative = cli("config", "set", "repos.allow", "repos/*")
    assert relative.code == 2 and "relative path" in relative.stderr
    assert cli("config", "set", "repos.allow").code == 2  # at least one pattern
    assert cli("config", "set", "db.url", "x").code == 2  # only repos.allow is stored so


def test_a_pinned_commit_must_exist_and_a_new_pin_is_resolved_again(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    repo = new_repo(tmp_path / "repo", {"a.txt": "1\n"})
    sha = git(repo, "rev-parse", "HEAD")
    missing = add(cli, "p", str(repo), "--commit", "0" * 40)
    assert missing.code == 3 and "0" * 40 in missing.stderr, missing.stderr
    cli.ok("add", "processor", "-n", "p", "-g", str(repo), "-m", MODULE, "--commit", sha[:8])
    assert cli("update", "processor", "-n", "p", "--commit", "deadbeef").code == 3
    cli.ok("update", "processor", "-n", "p", "--commit", sha)
    from shellflow.client.api import Processor
    from shellflow.config import load_settings
    from shellflow.errors import NotFound

    with pytest.raises(NotFound, match="0000000"):
        Processor(
            "api", gitrepo=str(repo), module=MODULE, commit="0" * 40, settings=load_settings()
        )
    Processor("api", gitrepo=str(repo), module=MODULE, commit=sha, settings=load_settings())

    # The commit an agent records is cleared by a new pin, so that it is resolved again.
    from shellflow.model.listing import Reader

    conn = Reader(initialised_db, writable=True)
    try:
        conn.execute("UPDATE processor SET deployed_commit = ? WHERE name = 'p'", (sha,))
    finally:
        conn.close()
    show = ("ls", "processor", "-n", "p", "--json")
    assert json.loads(cli.ok(*show).stdout)["deployed_commit"] == sha
    cli.ok("update", "processor", "-n", "p", "-c", "2")  # not the code: kept
    assert json.loads(cli.ok(*show).stdout)["deployed_commit"] == sha
    cli.ok("update", "processor", "-n", "p", "-br", "main")
    assert json.loads(cli.ok(*show).stdout)["deployed_commit"] is None

    cli.ok("config", "set", "repos.allow", "https://github.com/myorg/*")
    line = refused(cli("update", "processor", "-n", "p", "--commit", sha))
    assert "not allowed" in line


def test_the_ini_files_list_survives_flow_config(tmp_path: Path) -> None:
    from shellflow.config import load_settings, write_ini

    ini = tmp_path / "shellflow.ini"
    ini.write_text("[shellflow]\ndb = sqlite:///x.db\nrepos.allow = /srv/*\n")
    write_ini(ini, {"db": "sqlite:///y.db"})  # what 'flow --config' writes
    settings = load_settings(ini=ini)
    assert (settings.db, settings.repos_allow) == ("sqlite:///y.db", "/srv/*")
