"""``flow compose up|down|diff|export`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

NETWORK = """\
version: 1
queues:
  q1:
    type: direct
processors:
  proc1:
    gitrepo: https://example.org/repo.git
    module: pyfi.processors.sample
    hostname: localhost
    concurrency: 5
sockets:
  s.double:
    queue: q1
    processor: proc1
    task: double
    cron: "*/5 * * * *"
  s.square: {queue: q1, processor: proc1, task: square}
  s.add: {queue: q1, processor: proc1, task: add_two, wait: true}
plugs:
  p.one: {source: s.double, target: s.add, argument: one, queue: q1}
  p.two: {source: s.square, target: s.add, argument: two, queue: q1, type: error}
"""


def write(tmp_path: Path, text: str, name: str = "network.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def shown(cli: Any, kind: str, name: str) -> dict[str, Any]:
    return json.loads(cli.ok("ls", kind, "-n", name, "--json").stdout)


def names(cli: Any, kind: str) -> list[str]:
    return [json.loads(line)["name"] for line in cli.ok("ls", kind, "--json").stdout.splitlines()]


def test_up_applies_once_then_has_nothing_to_change(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    file = write(tmp_path, NETWORK)
    before = cli("compose", "diff", "--exit-code", file)
    assert before.code == 1
    assert before.stdout.splitlines()[0] == "+ queue q1"
    assert "+ plug p.two (source: s.double" not in before.stdout
    assert "+ socket s.add (queue: q1, processor: proc1, task: add_two, wait: true)" in (
        before.stdout.splitlines()
    )
    assert last_line(before.stderr) == "7 added, 0 changed, 0 removed"
    assert cli.ok("compose", "diff", file).stdout == before.stdout  # exit 0 without the flag

    first = cli.ok("compose", "up", file)
    assert first.stdout == ""  # messages go to stderr
    assert last_line(first.stderr) == "7 added, 0 changed, 0 removed"
    assert last_line(cli.ok("compose", "up", file).stderr) == "nothing to change"
    again = cli.ok("compose", "diff", "--exit-code", file)
    assert (again.stdout, last_line(again.stderr)) == ("", "nothing to change")

    # what `flow add` would have made
    processor = shown(cli, "processor", "proc1")
    assert (processor["hostname"], processor["concurrency"]) == ("localhost", 5)
    double = shown(cli, "socket", "s.double")
    assert (double["cron"], double["task"], double["queue"]) == ("*/5 * * * *", "double", "q1")
    assert shown(cli, "socket", "s.add")["wait"] is True
    plugs = {p["name"]: p for p in shown(cli, "socket", "s.add")["plugs"]}
    assert (plugs["p.one"]["argument"], plugs["p.one"]["type"]) == ("one", "RESULT")
    assert (plugs["p.two"]["argument"], plugs["p.two"]["type"]) == ("two", "ERROR")


def test_a_changed_file_changes_fields_and_resets_those_left_out(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    cli.ok("compose", "up", write(tmp_path, NETWORK))
    changed = (
        NETWORK.replace("    hostname: localhost\n", "")
        .replace("concurrency: 5", "concurrency: 3")
        .replace('cron: "*/5 * * * *"', "interval: 60")
        .replace(", argument: two", "")
    )
    file = write(tmp_path, changed, "changed.yaml")
    diff = cli.ok("compose", "diff", file).stdout.splitlines()
    assert diff == [
        "~ processor proc1: hostname: localhost -> null, concurrency: 5 -> 3",
        "~ socket s.double: interval: null -> 60, cron: */5 * * * * -> null",
        "~ plug p.two: argument: two -> null",
    ]
    assert last_line(cli.ok("compose", "up", file).stderr) == "0 added, 3 changed, 0 removed"
    assert last_line(cli.ok("compose", "up", file).stderr) == "nothing to change"
    processor = shown(cli, "processor", "proc1")
    assert (processor["hostname"], processor["concurrency"]) == (None, 3)
    double = shown(cli, "socket", "s.double")
    assert (double["interval"], double["cron"]) == (60, None)

    unscheduled = changed.replace("    interval: 60\n", "")
    cli.ok("compose", "up", write(tmp_path, unscheduled, "unscheduled.yaml"))
    from shellflow.model.db import session_scope
    from shellflow.model.store import Store

    with session_scope(initialised_db) as session:
        socket = Store(session).get("socket", "s.double")
        assert (socket.interval, socket.cron, socket.schedule_type, socket.scheduled) == (
            None, None, None, False
        )  # fmt: skip


def test_down_removes_what_the_file_declares_and_nothing_else(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    file = write(tmp_path, NETWORK)
    cli.ok("compose", "up", file)
    cli.ok("add", "queue", "-n", "unrelated")
    cli.ok("add", "socket", "-n", "s.extra", "-q", "q1", "-pn", "proc1", "-t", "do_this")

    refused = cli("compose", "down", file)  # s.extra needs proc1 and q1
    assert refused.code == 4
    assert "s.extra" in refused.stderr and "--cascade" in refused.stderr
    assert names(cli, "plugs") == ["p.one", "p.two"]  # one transaction: nothing removed

    cli.ok("delete", "socket", "-n", "s.extra")
    down = cli.ok("compose", "down", file)
    assert down.stderr.splitlines()[:3] == ["- plug p.one", "- plug p.two", "- socket s.double"]
    assert last_line(down.stderr) == "0 added, 0 changed, 7 removed"
    assert names(cli, "queues") == ["unrelated"]
    assert names(cli, "processors") == [] and names(cli, "sockets") == []
    assert last_line(cli.ok("compose", "down", file).stderr) == "nothing to change"


def test_down_with_cascade_takes_dependents_along(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    file = write(tmp_path, NETWORK)
    cli.ok("compose", "up", file)
    cli.ok("add", "socket", "-n", "s.extra", "-q", "q1", "-pn", "proc1", "-t", "do_this")
    down = cli.ok("compose", "down", "--cascade", file)
    assert "- socket s.extra (cascade)" in down.stderr.splitlines()
    assert names(cli, "sockets") == []


def test_prune_removes_what_the_file_does_not_declare(
    cli: Any, initialised_db: str, tmp_path: Path
) -> None:
    file = write(tmp_path, NETWORK)
    cli.ok("compose", "up", file)
    cli.ok("add", "queue", "-n", "stray")
    assert last_line(cli.ok("compose", "up", file).stderr) == "nothing to change"
    assert cli.ok("compose", "diff", "--prune", file).stdout == "- queue stray\n"
    pruned = cli.ok("compose", "up", "--prune", file)
    assert last_line(pruned.stderr) == "0 added, 0 changed, 1 removed"
    assert names(cli, "queues") == ["q1"]


def test_export_round_trips(cli: Any, initialised_db: str, tmp_path: Path) -> None:
    richer = NETWORK.replace(
        "    type: direct\n", "    type: topic\n    durable: false\n    message_ttl: 5000\n"
    ).replace("concurrency: 5", "concurrency: 5\n    branch: main\n    retries: 2")
    cli.ok("compose", "up", write(tmp_path, richer))
    exported = cli.ok("compose", "export").stdout
    assert "durable: false" in exported and "retries: 2" in exported
    assert "type: RESULT" not in exported  # defaults are left out
    out = tmp_path / "exported.yaml"
    assert cli.ok("compose", "export", "-o", str(out)).stdout == ""
    assert out.read_text() == exported

    cli.ok("db", "drop", "-y")  # a fresh database
    cli.ok("db", "init")
    cli.ok("config", "set", "repos.allow", "*")  # nothing is allowed on a new PostgreSQL one
    assert cli.ok("compose", "export").stdout == "".join(exported.splitlines(True)[:2]) + (
        "version: 1\n"
    )
    assert last_line(cli.ok("compose", "up", str(out)).stderr) == "7 added, 0 changed, 0 removed"
    assert cli.ok("compose", "export").stdout == exported
    assert last_line(cli.ok("compose", "up", write(tmp_path, richer)).stderr) == (
        "nothing to change"
    )


INVALID = [
    ("queues:\n  q: {type: direct\n", r"bad\.yaml:3:1: expected ',' or '}'"),
    ("queues:\n  q: {}\n  q: {}\n", r"bad\.yaml:3:3: 'q' appears twice"),
    ("queue:\n  q: {}\n", r"bad\.yaml:1: unknown section 'queue'; did you mean 'queues'\?"),
    ("queues:\n  q:\n    tpye: direct\n", r"bad\.yaml:3: queue 'q': unknown field 'tpye'; did"),
    ("queues:\n  q: {type: weird}\n", r"bad\.yaml:2: queue 'q': type must be one of direct"),
    ("queues:\n  q: {durable: 3}\n", r"bad\.yaml:2: queue 'q': durable must be true or false"),
    ("processors:\n  p: {module: m, gitrepo: g, concurrency: 0}\n", r":2: .*at least 1"),
    ("processors:\n  p: {module: m, gitrepo: g, commit: 1234}\n", r"commit must be text.*quote"),
    ("sockets:\n  s: {queue: q, processor: p}\n", r"bad\.yaml:2: socket 's': missing field 'task'"),
    ("sockets:\n  s: {queue: q, processor: p, task: f, cron: 'every day'}\n", r"cron line"),
    ("sockets:\n  s: {queue: q, processor: p, task: f, cron: '* * * * *', interval: 5}\n",
     r"either interval or cron"),
    ("sockets:\n  s: {queue: q, processor: p, task: not-a-name}\n", r"not a Python function"),
    ("plugs:\n  x: {source: a, target: a, queue: q}\n", r"cannot connect a socket to itself"),
    ("queues:\n  \"bad\tname\": {}\n", r"name .* is not allowed: a name is 1 to 200"),
    ("version: 2\n", r"bad\.yaml:1: version must be 1"),
    ("- just\n- a list\n", r"bad\.yaml:1: expected a mapping of sections"),
    ("queues:\n  1: {}\n", r"bad\.yaml:2:3: key 1 must be text"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_an_invalid_file_is_exit_2_with_its_line(
    cli: Any, tmp_path: Path, text: str, message: str
) -> None:
    # checked before any database is opened: no database exists here at all
    result = cli("compose", "up", write(tmp_path, text, "bad.yaml"))
    assert result.code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_is_shown(cli: Any, tmp_path: Path) -> None:
    text = "queues:\n  q: {type: weird}\n  r: {tpye: direct}\nsockets:\n  s: {queue: q}\n"
    result = cli("compose", "diff", write(tmp_path, text, "bad.yaml"))
    assert result.code == 2
    assert [Path(line.split(": ")[1]).name for line in result.stderr.strip().splitlines()] == [
        "bad.yaml:2", "bad.yaml:3", "bad.yaml:5", "bad.yaml:5"
    ]  # fmt: skip


def test_a_missing_reference_applies_nothing(cli: Any, initialised_db: str, tmp_path: Path) -> None:
    text = "queues:\n  q1: {}\nsockets:\n  s: {queue: q1, processor: nope, task: f}\n"
    result = cli("compose", "up", write(tmp_path, text))
    assert result.code == 3
    assert result.stderr.startswith("flow: ") and ":4: socket 's': no processor named 'nope'" in (
        result.stderr
    )
    assert names(cli, "queues") == []  # q1 was added in the same, rolled back transaction


def test_a_missing_file_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    result = cli("compose", "up", str(tmp_path / "absent.yaml"))
    assert result.code == 2 and "cannot read" in result.stderr


def test_rights_are_those_of_flow_add(
    cli: Any, initialised_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shellflow.model import access

    with monkeypatch.context() as patched:
        patched.setattr(access, "current_principal", lambda *_a, **_k: access.Principal("eve"))
        result = cli("compose", "up", write(tmp_path, NETWORK))
    assert result.code == 5
    assert "eve lacks the ADD_QUEUE right on q1" in result.stderr
    assert names(cli, "queues") == []


def test_the_examples_apply(cli: Any, initialised_db: str) -> None:
    quickstart, add_two = EXAMPLES / "quickstart.yaml", EXAMPLES / "add_two.yaml"
    assert last_line(cli.ok("compose", "up", str(quickstart)).stderr) == (
        "4 added, 0 changed, 0 removed"
    )
    # the same sockets as the quick start's `flow add socket` lines (spec section 5.5)
    script = (EXAMPLES / "quickstart.sh").read_text()
    assert names(cli, "sockets") == sorted(re.findall(r"flow add socket -n (\S+)", script))
    assert shown(cli, "processor", "proc1")["concurrency"] == 5  # the spec's `-c 5`

    assert last_line(cli.ok("compose", "up", str(add_two)).stderr) == (
        "7 added, 0 changed, 0 removed"
    )
    assert shown(cli, "processor", "joins")["gitrepo"] == str(ROOT)  # `..` from examples/
    plugs = shown(cli, "socket", "pyfi.processors.sample.add_two")["plugs"]
    assert {(p["socket"], p["argument"], p["direction"]) for p in plugs} == {
        ("pyfi.processors.sample.double", "one", "in"),
        ("pyfi.processors.sample.square", "two", "in"),
    }
    for example in (quickstart, add_two):
        assert last_line(cli.ok("compose", "up", str(example)).stderr) == "nothing to change"


def test_the_readme_example_applies(cli: Any, initialised_db: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Compose files.*?```yaml\n(.*?)```", readme, re.S)
    assert block is not None
    file = write(tmp_path, block[1])
    assert last_line(cli.ok("compose", "up", file).stderr) == "5 added, 0 changed, 0 removed"
    assert last_line(cli.ok("compose", "up", file).stderr) == "nothing to change"
