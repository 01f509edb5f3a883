"""A processor larger than any node is spread over several as shares summing to exactly its
CPUs (``shellflow.engine.fleet.spread``), on the model database; the agents' side is
``tests/engine/test_spread.py``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shellflow.engine.worker.share_rows import bounds, report
from tests.integration.test_nodes import _nodes, _place


def _shares(url: str, processor: str) -> dict[str, int]:
    from sqlalchemy import text

    from shellflow.model.db import get_engine

    sql = text(
        "SELECT n.name, d.cpus FROM deployment d JOIN node n ON n.id = d.node_id"
        " JOIN processor p ON p.id = d.processor_id WHERE p.name = :p"
    )
    with get_engine(url).connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(sql, {"p": processor})}


@dataclass
class _At:
    """What ``share_rows`` reads of the settings: the database."""

    db: str


def _deployment_ids(url: str, processor: str) -> dict[str, str]:
    from sqlalchemy import text

    from shellflow.model.db import get_engine

    sql = text(
        "SELECT n.name, d.id FROM deployment d JOIN node n ON n.id = d.node_id"
        " JOIN processor p ON p.id = d.processor_id WHERE p.name = :p"
    )
    with get_engine(url).connect() as conn:
        return {r[0]: str(r[1]) for r in conn.execute(sql, {"p": processor})}


def _drop(url: str, node_id: str) -> None:
    from sqlalchemy import text

    from shellflow.model.db import get_engine

    with get_engine(url).begin() as conn:
        conn.execute(text("UPDATE node SET status = 'stopped' WHERE id = :i"), {"i": node_id})


def test_a_processor_larger_than_any_node_is_spread_exactly(cli: Any, initialised_db: str) -> None:
    ids = _nodes(initialised_db, {n: ("m.example", 2, True) for n in ("n1", "n2", "n3")})
    cli.ok("add", "processor", "-n", "big", "-g", "/r", "-m", "m", "-c", "3",
           "--min-workers", "1", "--max-workers", "3")  # fmt: skip
    changes = _place(initialised_db)
    assert changes == ["placed big on n1 (2 of 3 CPUs)", "placed big on n2 (1 of 3 CPUs)"]
    assert _shares(initialised_db, "big") == {"n1": 2, "n2": 1}
    assert _place(initialised_db) == []  # stable
    row = json.loads(cli.ok("ls", "processor", "-n", "big", "--json").stdout)
    assert [(d["node"], d["cpus"]) for d in row["deployments"]] == [("n1", 2), ("n2", 1)]
    assert {"workers_current", "workers_desired", "scale_reason"} <= set(row["deployments"][0])

    # Each share's worker keeps its part of the bounds, and reports into its row; the
    # processor row holds the sums.
    deployments = _deployment_ids(initialised_db, "big")
    at: Any = _At(initialised_db)
    assert [bounds(at, "big", deployments[n]) for n in ("n1", "n2")] == [(1, 2), (1, 1)]
    assert bounds(at, "big") == (1, 3)  # a worker not told its share: the processor's
    report(at, "big", deployments["n1"], (2, 2, "5 calls waiting"))
    report(at, "big", deployments["n2"], (1, 1, "steady"))
    row = json.loads(cli.ok("ls", "processor", "-n", "big", "--json").stdout)
    assert (row["workers_current"], row["workers_desired"]) == (3, 3)
    assert row["scale_reason"] == "big@n2: steady"
    assert [d["workers_current"] for d in row["deployments"]] == [2, 1]

    # A share's node is lost: its CPU goes elsewhere, the other share stays as it was.
    _drop(initialised_db, ids["n2"])
    assert _place(initialised_db) == ["moved big off n2", "placed big on n3 (1 of 3 CPUs)"]
    assert _shares(initialised_db, "big") == {"n1": 2, "n3": 1}

    # Asked for more: the new CPU goes to a node without a share, or else grows a share;
    # when no node has room, the shares placed stay as they are.
    cli.ok("update", "processor", "-n", "big", "-c", "4")
    assert _place(initialised_db) == ["grew big@n3 to 2 CPUs"]
    assert _shares(initialised_db, "big") == {"n1": 2, "n3": 2}
    cli.ok("update", "processor", "-n", "big", "-c", "5")
    _place(initialised_db)
    assert _shares(initialised_db, "big") == {"n1": 2, "n3": 2}
    row = json.loads(cli.ok("ls", "processor", "-n", "big", "--json").stdout)
    assert sum(d["cpus"] for d in row["deployments"]) == 4 < row["concurrency"]

    # Asked for less: placed again, whole, on one node.
    cli.ok("update", "processor", "-n", "big", "-c", "2", "--min-workers", "1",
           "--max-workers", "2")  # fmt: skip
    _place(initialised_db)
    assert sum(_shares(initialised_db, "big").values()) == 2
    assert len(_shares(initialised_db, "big")) == 1


def test_never_more_shares_than_max_workers(cli: Any, initialised_db: str) -> None:
    _nodes(initialised_db, {n: ("h", 1, True) for n in ("a", "b", "c")})
    cli.ok("add", "processor", "-n", "wide", "-g", "/r", "-m", "m", "-c", "3",
           "--min-workers", "1", "--max-workers", "2")  # fmt: skip
    _place(initialised_db)
    assert _shares(initialised_db, "wide") == {}  # three shares would need three workers
    row = json.loads(cli.ok("ls", "processor", "-n", "wide", "--json").stdout)
    assert "no live node has 3 free CPUs" in row["status_reason"]
    cli.ok("update", "processor", "-n", "wide", "--max-workers", "3")
    _place(initialised_db)
    assert _shares(initialised_db, "wide") == {"a": 1, "b": 1, "c": 1}


def test_processors_that_fit_a_node_are_placed_before_any_is_spread(
    cli: Any, initialised_db: str
) -> None:
    _nodes(initialised_db, {"a": ("h", 4, True), "b": ("h", 2, True)})
    cli.ok("add", "processor", "-n", "aaa", "-g", "/r", "-m", "m", "-c", "5")  # first by name
    cli.ok("add", "processor", "-n", "p", "-g", "/r", "-m", "m", "-c", "3")
    assert _place(initialised_db) == ["placed p on a"]
    assert _shares(initialised_db, "aaa") == {}  # 1 + 2 CPUs left: not 5
