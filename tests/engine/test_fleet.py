"""Several nodes against one PostgreSQL + RabbitMQ + Redis: placement by node, drain and
cordon, and what an agent killed with ``kill -9`` leaves (nothing serving, its processor
placed again elsewhere).

The nodes are agents of this one machine, each with its own home and ``--node`` name: they
share a hostname, which is what used to make every one of them serve a processor placed on
one. tests/engine/test_netns_fleet.py runs nodes with hostnames and links of their own
(Linux namespaces: tests/engine/netns.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.agents import wait_status
from tests.engine.fleet import Fleet, group_gone
from tests.waiting import poll


def test_three_nodes_of_one_machine_drain_cordon_and_an_agent_killed(
    fleet: Fleet, tmp_path: Path
) -> None:
    d = fleet.d
    proc, socket = fleet.sample_network(tmp_path, "fleet")
    for node in ("n1", "n2", "n3"):
        fleet.start(node)

    # One -c 1 processor without a hostname: one deployment, one worker in the whole fleet.
    wait_status(d, proc, "running", timeout=180)
    out = d.ok("task", "run", "-s", socket, "--data", '"x"', "--timeout", "90")
    assert out.stdout == "TEXT:x\n"
    [first] = fleet.placed_on()
    assert list(fleet.workers()) == [f"{proc}@{first}"]
    others = sorted({"n1", "n2", "n3"} - {first})
    for node in others:  # they never even deployed it (they used to, each its own worker)
        assert f"deploying {proc}" not in fleet.log(node), fleet.log(node)
    lines = d.ok("ls", "nodes", "--json").stdout.splitlines()
    listed = {r["name"]: r for r in map(json.loads, lines)}
    assert listed[first]["processors"] == [proc] and listed[first]["workers"] == 1
    assert listed[first]["free_cpus"] == 1 and listed[others[0]]["free_cpus"] == 2

    # Cordon one of the others, drain the first: the processor moves to the third node,
    # whose agent starts a worker; the first node's agent stops its own.
    cordoned, target = others
    d.ok("node", "cordon", "-n", cordoned)
    [old_pid] = fleet.workers().values()
    d.ok("node", "drain", "-n", first)
    poll(lambda: list(fleet.workers()) == [f"{proc}@{target}"], 180,
         lambda: f"the worker to move to {target}: {fleet.workers()}")  # fmt: skip
    poll(lambda: group_gone(old_pid), 90, "the drained node's worker to exit")
    wait_status(d, proc, "running", timeout=180)
    out = d.ok("task", "run", "-s", socket, "--data", '"y"', "--timeout", "90")
    assert out.stdout == "TEXT:y\n"

    # kill -9 the agent serving it: its worker stops serving on its own (within about a
    # second: shellflow.engine.worker.watchdog), and once the node's heartbeat is stale the
    # processor is placed on the node uncordoned meanwhile.
    [(_, worker_pid)] = fleet.workers().items()
    killed = fleet.agents[target]
    killed.kill()
    killed.wait()
    poll(lambda: group_gone(worker_pid), 60, "the killed agent's worker to exit")
    worker_log = (fleet.homes[target] / "logs" / f"{proc}.log").read_text(errors="replace")
    assert "is gone: stopping this worker" in worker_log, worker_log[-2000:]
    d.ok("node", "uncordon", "-n", cordoned)
    poll(lambda: fleet.placed_on() == [cordoned], 90, "the processor to be placed again")
    poll(lambda: f"{proc}@{cordoned}" in fleet.workers(), 180, "a worker on the new node")
    wait_status(d, proc, "running", timeout=180)
    out = d.ok("task", "run", "-s", socket, "--data", '"z"', "--timeout", "90")
    assert out.stdout == "TEXT:z\n"
