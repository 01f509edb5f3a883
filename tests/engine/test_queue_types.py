"""Sockets behind topic and fanout queues (``shellflow.engine.transport.routing``), on both
deployments.

A user-defined queue is an exchange of its type; each socket has its own durable queue bound
to it by the socket's name. Calls reach the socket through that exchange whatever its type.
"""

from __future__ import annotations

import json

import pytest

from tests.engine.conftest import ROOT, Deployment
from tests.engine.records import count_events


def typed_network(d: Deployment, qtype: str) -> dict[str, str]:
    names = {
        "queue": d.name(f"{qtype}.q"),
        "processor": d.name(f"{qtype}.p"),
        "do_something": d.name(f"{qtype}.do_something"),
        "do_this": d.name(f"{qtype}.do_this"),
    }
    d.setup("add", "queue", "-n", names["queue"], "-t", qtype)
    d.setup("add", "processor", "-n", names["processor"], "-g", str(ROOT),
         "-mp", "examples/processors", "-m", "pyfi.processors.sample", "-h", "localhost",
         "-c", "1")  # fmt: skip
    for function in ("do_something", "do_this"):
        d.setup("add", "socket", "-n", names[function], "-q", names["queue"], "-pn",
             names["processor"], "-t", function)  # fmt: skip
    d.broker_queues += [names["do_something"], names["do_this"]]
    d.broker_exchanges.append(names["queue"])
    return names


@pytest.mark.parametrize("qtype", ["topic", "fanout"])
def test_sockets_behind_a_queue_of_each_type_run_their_calls(
    deployment: Deployment, qtype: str
) -> None:
    d = deployment
    names = typed_network(d, qtype)
    d.start_worker(names["processor"])
    first = d.ok("task", "run", "-s", names["do_something"], "--data", '"hi"', "--timeout", "120")
    assert first.stdout == "TEXT:hi\n"
    second = d.ok("task", "run", "-s", names["do_this"], "--data", '"there"', "--timeout", "120")
    assert second.stdout == "Do this: there\n"
    # Each call ran once, on its own socket, and nothing else ran.
    expect = [
        (names["do_something"], "finished", json.dumps("TEXT:hi")),
        (names["do_this"], "finished", json.dumps("Do this: there")),
    ]
    query = "SELECT name, state, result FROM call ORDER BY started"
    assert d.wait_for(query, (), expect, timeout=60) == expect
    # A fanout exchange must not copy a call into its sibling socket's queue: one run each.
    runs = {name: count_events(d, names[name], "postrun") for name in ("do_something", "do_this")}
    assert runs == {"do_something": 1, "do_this": 1}
