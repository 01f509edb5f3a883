"""A first end-to-end pass over the spec's quick start on both databases."""

from __future__ import annotations


def test_quickstart_network_on_both_databases(cli, db_url: str) -> None:
    cli.ok("db", "init")
    cli.ok("config", "set", "repos.allow", "https://example.invalid/*")  # none on PostgreSQL
    cli.ok("add", "queue", "-n", "pyfi.queue1", "-t", "direct")
    cli.ok("add", "processor", "-n", "proc1", "-g", "https://example.invalid/repo", "-m",
           "pyfi.processors.sample", "-h", "localhost", "-c", "5")  # fmt: skip
    cli.ok("add", "socket", "-n", "s1", "-q", "pyfi.queue1", "-pn", "proc1", "-t", "do_this")
    out = cli.ok("ls", "sockets").stdout.splitlines()
    assert out == ["s1\tproc1\tpyfi.queue1\tdo_this\tpyfi.processors.sample\t\t\tfalse\tready"]
    missing = cli("ls", "socket", "-n", "s11")
    assert missing.code == 3
    assert "did you mean 's1'" in missing.stderr
