"""A node whose link to the database is cut while its agent runs (shellflow.engine.fleet.lease).

Node n1's agent (and so its workers) reaches PostgreSQL through a link the test cuts
(tests/engine/cutlink.py: bytes stop flowing, connections hang); RabbitMQ and Redis stay
reachable. With another live node, n1 stops its worker once its lease lapses and the
processor is placed on the other node; calls go on there. Alone, n1 keeps its worker.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from shellflow.engine.fleet.lease import LOST_AFTER
from tests.engine.agents import wait_status
from tests.engine.conftest import Deployment
from tests.engine.cutlink import CutLink
from tests.engine.fleet import Fleet, group_gone
from tests.waiting import poll


def _start_behind(fleet: Fleet, node: str, link: CutLink) -> None:
    """Start ``node``'s agent with its database reached through ``link``."""
    d, direct = fleet.d, fleet.d.env["SHELLFLOW_DB"]
    url = urlsplit(direct)
    d.env["SHELLFLOW_DB"] = url._replace(netloc=f"{url.username}@127.0.0.1:{link.port}").geturl()
    try:
        fleet.start(node)
    finally:
        d.env["SHELLFLOW_DB"] = direct


def _beat_age(d: Deployment, node: str) -> float:
    from shellflow.model.base import utcnow

    [(beat,)] = d.query("SELECT heartbeat FROM node WHERE name = ?", (node,))
    beat = datetime.fromisoformat(beat) if isinstance(beat, str) else beat
    beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
    return (utcnow() - beat).total_seconds()


def _logs(fleet: Fleet, node: str, proc: str) -> str:
    worker = (fleet.homes[node] / "logs" / f"{proc}.log").read_text(errors="replace")
    return f"{fleet.log(node)[-3000:]}\n--- worker:\n{worker[-3000:]}"


def _link(fleet: Fleet) -> CutLink:
    url = urlsplit(fleet.d.env["SHELLFLOW_DB"])
    return CutLink(url.hostname or "127.0.0.1", url.port or 5432)


def _serving_behind(fleet: Fleet, link: CutLink, proc: str, socket: str) -> int:
    """Node n1 started behind ``link`` and its worker serving (it reads the database as it
    starts: a cut then is another story); the worker's pid."""
    _start_behind(fleet, "n1", link)
    wait_status(fleet.d, proc, "running", timeout=180)
    [(_, pid)] = fleet.workers().items()
    out = fleet.d.ok("task", "run", "-s", socket, "--data", '"before"', "--timeout", "90")
    assert out.stdout == "TEXT:before\n"
    return pid


def test_a_node_cut_from_the_database_stops_its_worker_and_loses_its_processor(
    fleet: Fleet, tmp_path: Path
) -> None:
    d = fleet.d
    proc, socket = fleet.sample_network(tmp_path, "cut")
    link = _link(fleet)
    try:
        old_pid = _serving_behind(fleet, link, proc, socket)
        fleet.start("n2")
        poll(lambda: "lease: 1 other live nodes" in fleet.log("n1"), 60, "n1 to see n2")
        assert fleet.placed_on() == ["n1"]

        link.cut()
        cut = time.monotonic()
        seen: dict[str, float] = {}  # when each step was first seen, after the cut

        def steps() -> bool:
            for step, done in (
                ("lease lost", lambda: "lease lost" in fleet.log("n1")),
                ("worker gone", lambda: group_gone(old_pid)),
                ("moved", lambda: fleet.placed_on() == ["n2"]),
            ):
                if step not in seen and done():
                    seen[step] = time.monotonic() - cut
            return len(seen) == 3

        poll(steps, 120, lambda: f"the cut node to give up ({seen}): {_logs(fleet, 'n1', proc)}")
        poll(lambda: f"{proc}@n2" in fleet.workers(), 300, "a worker on n2")
        wait_status(d, proc, "running", timeout=180)
        out = d.ok("task", "run", "-s", socket, "--data", '"cut"', "--timeout", "90")
        assert out.stdout == "TEXT:cut\n"
        assert "lease lost" in fleet.log("n1"), fleet.log("n1")[-3000:]

        # The link back: n1 reads that the processor is n2's and starts nothing.
        link.restore()
        poll(lambda: "lease confirmed again" in fleet.log("n1"), 120, "n1 to read again")
        assert fleet.placed_on() == ["n2"]
        assert list(fleet.workers()) == [f"{proc}@n2"]
        print("\ncut link, seconds after the cut:", {k: round(v, 1) for k, v in seen.items()})
    finally:
        link.close()


def test_a_lone_node_cut_from_the_database_keeps_its_worker(fleet: Fleet, tmp_path: Path) -> None:
    d = fleet.d
    proc, socket = fleet.sample_network(tmp_path, "cut")
    link = _link(fleet)
    try:
        pid = _serving_behind(fleet, link, proc, socket)
        link.cut()
        # Nowhere else could the work go: the worker is left alone through the outage, past
        # the time after which a node with company would have stopped it.
        poll(lambda: _beat_age(d, "n1") > LOST_AFTER + 2, 120, "n1's heartbeat to age")
        assert not group_gone(pid), _logs(fleet, "n1", proc)
        assert "lease lost" not in fleet.log("n1")
        link.restore()
        out = d.ok("task", "run", "-s", socket, "--data", '"back"', "--timeout", "90")
        assert out.stdout == "TEXT:back\n"
        assert fleet.workers() == {f"{proc}@n1": pid}  # the same worker throughout
        assert "lease lost" not in fleet.log("n1")
    finally:
        link.close()
