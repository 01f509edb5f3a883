"""``--min-workers``/``--max-workers`` and the compose fields: stored, shown, and typed
mistakes refused with exit 2 (``shellflow.model.scale``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ADD = ("add", "processor", "-g", "https://example.org/r.git", "-m", "m")


def shown(cli: Any, name: str) -> dict[str, Any]:
    return json.loads(cli.ok("ls", "processor", "-n", name, "--json").stdout)


def test_bounds_are_stored_shown_and_changed(cli: Any, initialised_db: str) -> None:
    cli.ok(*ADD, "-n", "p", "-c", "3", "--min-workers", "1", "--max-workers", "3")
    row = shown(cli, "p")
    assert (row["min_workers"], row["max_workers"], row["concurrency"]) == (1, 3, 3)
    assert row["workers_current"] is None and row["scale_reason"] is None  # no worker yet
    cli.ok("update", "processor", "-n", "p", "--min-workers", "2")
    assert shown(cli, "p")["min_workers"] == 2
    cli.ok(*ADD, "-n", "fixed", "-c", "2")
    assert shown(cli, "fixed")["min_workers"] is None  # no bounds: a pool of -c processes


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--max-workers", "3"), "give both"),
        (("-c", "3", "--min-workers", "1", "--max-workers", "4"), "over the processor's 3 CPUs"),
        (("--min-workers", "2", "--max-workers", "1", "-c", "2"), "is over --max-workers 1"),
        (("--min-workers", "0", "--max-workers", "1"), "--min-workers"),
        (("--min-workers", "one", "--max-workers", "1"), "--min-workers"),
        (("--max-workers", "-1", "--min-workers", "1"), "--max-workers"),
    ],
)
def test_typed_mistakes_exit_2(
    cli: Any, initialised_db: str, options: tuple[str, ...], says: str
) -> None:
    result = cli(*ADD, "-n", "p", *options)
    assert result.code == 2, result.stderr
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli("ls", "processor", "-n", "p").code == 3  # nothing was added


def test_an_update_may_not_break_the_bounds(cli: Any, initialised_db: str) -> None:
    cli.ok(*ADD, "-n", "p", "-c", "3", "--min-workers", "1", "--max-workers", "3")
    lowered = cli("update", "processor", "-n", "p", "-c", "2")
    assert lowered.code == 2 and "raise -c to 3" in lowered.stderr
    assert cli("update", "processor", "-n", "p", "--min-workers", "4").code == 2
    assert (shown(cli, "p")["concurrency"], shown(cli, "p")["min_workers"]) == (3, 1)
    cli.ok("update", "processor", "-n", "p", "-c", "2", "--max-workers", "2")
    assert (shown(cli, "p")["concurrency"], shown(cli, "p")["max_workers"]) == (2, 2)


COMPOSE = """\
version: 1
processors:
  p:
    gitrepo: https://example.org/r.git
    module: m
    concurrency: 3
    min_workers: 1
    max_workers: {most}
"""


def test_compose_sets_and_checks_the_bounds(cli: Any, initialised_db: str, tmp_path: Path) -> None:
    file = tmp_path / "net.yaml"
    file.write_text(COMPOSE.format(most=4))
    refused = cli("compose", "up", str(file))
    assert refused.code == 2 and "--max-workers 4" in refused.stderr
    file.write_text(COMPOSE.format(most=3))
    cli.ok("compose", "up", str(file))
    assert shown(cli, "p")["max_workers"] == 3
    assert "max_workers: 3" in cli.ok("compose", "export").stdout
    assert cli.ok("compose", "diff", "--exit-code", str(file)).code == 0
