"""The Python API against live deployments: calls, nested workflows and their records,
failures, and socket commands composed with plumbum.

Each test runs on the embedded default and on RabbitMQ + Redis + PostgreSQL; the sockets the
workflows use are created through the object API before the worker starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shellflow
from shellflow.client import settings as api_settings
from shellflow.errors import CallFailed
from tests.engine.conftest import Deployment

WAIT = 180  # seconds; generous, the machine is shared


@pytest.fixture
def api(
    deployment: Deployment, network: dict[str, str]
) -> Iterator[tuple[Deployment, dict[str, str]]]:
    """The quick start network plus ``gather`` and ``fail`` sockets, a worker, and this
    process's API configured from the deployment's environment."""
    d = deployment
    shellflow.configure(environ=d.env)
    names = dict(network)
    for function in ("gather", "fail"):
        names[function] = d.name(f"pyfi.processors.sample.{function}")
        sock = shellflow.Socket(
            name=names[function], processor=names["processor"], queue=names["queue"], task=function
        )
        assert sock.created
        d.broker_queues.append(names[function])
    d.start_worker(names["processor"], concurrency=2)
    yield d, names
    api_settings.reset()


def _calls(d: Deployment, flow: str, count: int) -> list[dict[str, Any]]:
    """The flow run's call records once ``count`` of them are finished (records lag results)."""
    sql = "SELECT count(*) FROM call WHERE tracking = ? AND state IN ('finished', 'failed')"
    d.wait_for(sql, (flow,), [(count,)], timeout=60)
    sql = "SELECT id, name, parent, args, state, sources FROM call WHERE tracking = ?"
    return [
        {"id": r[0], "name": r[1], "parent": r[2], "args": json.loads(r[3])["args"], "state": r[4],
         "sources": json.loads(r[5]) if r[5] else None}
        for r in d.query(sql, (flow,))
    ]  # fmt: skip


def test_socket_call_and_partial(api: tuple[Deployment, dict[str, str]]) -> None:
    d, n = api
    do_something = shellflow.Function(name=n["do_something"])
    handle = do_something("HI THERE!")
    assert handle.get(timeout=WAIT) == "TEXT:HI THERE!"
    assert handle.flow == handle.id  # a lone call is its own flow run, as on the command line
    [call] = _calls(d, handle.flow, 1)
    assert (call["id"], call["parent"], call["args"]) == (handle.id, None, ["HI THERE!"])
    # Explicit provenance: a later call joins the flow run, continuing the first call.
    follow = shellflow.Socket(name=n["do_this"]).send([handle.get()], flow=handle.flow,
                                                      parent=handle.id)  # fmt: skip
    assert follow.get(timeout=WAIT) == "Do this: TEXT:HI THERE!"
    calls = _calls(d, handle.flow, 2)
    assert {c["id"]: c["parent"] for c in calls} == {handle.id: None, follow.id: handle.id}
    # A partial of one step, and values that are not text, travel as JSON.
    gather = shellflow.Socket(name=n["gather"])
    assert gather.p({"a": [1, 2]}, None)(3.5).get(timeout=WAIT) == [3.5, {"a": [1, 2]}, None]
    assert gather.si("only")("ignored").get(timeout=WAIT) == ["only"]


def test_spec_listing_nests_and_records_its_graph(api: tuple[Deployment, dict[str, str]]) -> None:
    """Spec 1.2 listing 1, with a socket that returns what it was given."""
    from shellflow import funnel, parallel, pipeline

    d, n = api
    do_something = shellflow.Socket(name=n["gather"]).p
    _pipeline = pipeline([
        do_something("One"),
        do_something("Two"),
        parallel([do_something("Four"), do_something("Five")]),
        do_something("Three"),
    ])  # fmt: skip
    _parallel = parallel([_pipeline, do_something("Six"), do_something("Seven")])
    _funnel = funnel([do_something("Eight"), _parallel], do_something("Nine"))
    result = _funnel(do_something("Four"))
    value = result.get(timeout=WAIT)

    two = [["One"], "Two"]
    three = [[[two, "Four"], [two, "Five"]], "Three"]
    nine = [[["Eight"], [three, ["Six"], ["Seven"]]], "Nine"]
    assert value == [nine, "Four"]

    calls = _calls(d, result.flow, 10)
    assert len(calls) == 10 and {c["state"] for c in calls} == {"finished"}
    assert {c["name"] for c in calls} == {n["gather"]}
    assert sorted(result.calls) == sorted(c["id"] for c in calls)
    by = {}
    for call in calls:
        label = call["args"][-1]
        by[label if label not in by else label + "-body"] = call
    if by["Four"]["parent"] == by["Nine"]["id"]:  # the body's Four may have been seen first
        by["Four"], by["Four-body"] = by["Four-body"], by["Four"]
    parent = {label: call["parent"] for label, call in by.items()}
    ids = {label: call["id"] for label, call in by.items()}
    assert parent["One"] is None and parent["Six"] is None and parent["Seven"] is None
    assert parent["Eight"] is None
    assert parent["Two"] == ids["One"]
    assert parent["Four"] == parent["Five"] == ids["Two"]
    assert parent["Three"] == ids["Five"]  # a list's parent: the last member's last call
    assert parent["Nine"] == ids["Seven"]
    assert parent["Four-body"] == ids["Nine"]
    # A list's call received every member's last call: all of them are its sources.
    sources = {label: call["sources"] for label, call in by.items() if call["sources"]}
    assert sources.keys() == {"Three", "Nine"}
    assert sorted(sources["Three"]) == sorted([ids["Four"], ids["Five"]])
    assert sorted(sources["Nine"]) == sorted(ids[k] for k in ("Eight", "Three", "Six", "Seven"))
    shown = json.loads(d.ok("ls", "call", "--id", ids["Nine"], "--json").stdout)
    assert shown["sources"] == sources["Nine"] and shown["parent"] == ids["Seven"]

    graph = d.ok("ls", "call", "--id", result.id, "--graph", "--json").stdout.splitlines()
    roots = [json.loads(line) for line in graph]
    assert sorted(r["id"] for r in roots) == sorted(
        ids[k] for k in ("One", "Six", "Seven", "Eight")
    )
    one = next(r for r in roots if r["id"] == ids["One"])
    [two_node] = one["children"]
    assert sorted(c["id"] for c in two_node["children"]) == sorted([ids["Four"], ids["Five"]])
    for four_or_five in two_node["children"]:  # Three hangs under both
        assert [c["id"] for c in four_or_five["children"]] == [ids["Three"]]
    dot = d.ok("ls", "call", "--id", result.id, "--graph", "--format", "dot").stdout
    into_nine = [line for line in dot.splitlines() if line.endswith(f'-> "{ids["Nine"]}";')]
    assert len(into_nine) == 4 and len(set(into_nine)) == 4


def test_lambda_listing_with_funnels_of_funnels(api: tuple[Deployment, dict[str, str]]) -> None:
    """Spec 12.2.3: funnels nested in a funnel without a final step, sent on to a body."""
    from shellflow import funnel, parallel, pipeline

    _d, n = api
    do_something = shellflow.Socket(name=n["gather"]).p
    do_this = shellflow.Socket(name=n["do_this"]).p
    _pipeline = pipeline([do_something("One"), parallel([do_this(), do_this()])])
    # do_this takes one argument: with no arguments of its own, a partial gets just the input.
    assert _pipeline().get(timeout=WAIT) == ["Do this: ['One']", "Do this: ['One']"]
    _funnel = funnel([do_something("Eight"), do_something("Nine")], do_something("A"))
    _funnel2 = funnel([do_something("Ten")], do_something("B"))
    _funnel3 = funnel([_funnel, _funnel2])
    result = _funnel3(do_something("Eleven"))
    assert result.get(timeout=WAIT) == [
        [[[["Eight"], ["Nine"]], "A"], [[["Ten"]], "B"]], "Eleven"
    ]  # fmt: skip


def test_a_failed_step_ends_the_workflow(api: tuple[Deployment, dict[str, str]]) -> None:
    from shellflow import pipeline

    d, n = api
    do_something = shellflow.Socket(name=n["do_something"])
    fail = shellflow.Socket(name=n["fail"])
    do_this = shellflow.Socket(name=n["do_this"])
    result = pipeline([do_something.p("x"), fail.p(), do_this.p()])()
    with pytest.raises(CallFailed, match="ValueError: failed on 'TEXT:x'"):
        result.get(timeout=WAIT)
    calls = _calls(d, result.flow, 2)
    assert sorted(c["state"] for c in calls) == ["failed", "finished"]
    with pytest.raises(CallFailed, match="ValueError"):
        fail("y").get(timeout=WAIT)


def test_unknown_socket_is_refused_before_anything_is_sent(
    api: tuple[Deployment, dict[str, str]],
) -> None:
    from shellflow import pipeline
    from shellflow.errors import NotFound

    d, n = api
    before = d.query("SELECT count(*) FROM call")
    with pytest.raises(NotFound, match="no socket named"):
        pipeline([shellflow.Socket(name=n["do_something"]).p("x"), shellflow.Socket("nope").p()])()
    with pytest.raises(NotFound):
        shellflow.Socket("nope")("x")
    assert d.query("SELECT count(*) FROM call") == before


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_plumbum_pipeline_of_socket_commands_is_one_flow(
    api: tuple[Deployment, dict[str, str]],
) -> None:
    from plumbum import local

    from shellflow.client.commands import sockets

    d, n = api
    s = sockets()
    assert n["do_something"] in s and len(s) == 5
    out = (s[n["do_something"]] << "hi" | s[n["do_this"]])()
    assert out == "Do this: TEXT:hi\n"
    mixed = (local["echo"]["mixed"] | s[n["do_something"]] | local["tr"]["a-z", "A-Z"])()
    assert mixed == "TEXT:MIXED\n"
    rows = d.wait_rows("SELECT id, name, tracking, parent FROM call ORDER BY started", (), 3)
    (first, name_a, flow_a, parent_a), (_, name_b, flow_b, parent_b), (_, _, flow_c, _) = rows
    assert (name_a, name_b) == (n["do_something"], n["do_this"])
    assert flow_a == flow_b != flow_c
    assert parent_a is None and parent_b == first
    with pytest.raises(KeyError, match="did you mean"):
        s[n["do_something"] + "x"]


def test_decorated_classes_serve_their_sockets_and_plugs(deployment: Deployment) -> None:
    """Spec 12.2.1: classes define the network; their methods then call it, plugs fire."""
    from shellflow import ProcessorBase, plug, processor, socket
    from tests.engine.conftest import ROOT

    d = deployment
    shellflow.configure(environ=d.env)
    try:
        proc1, proc2, queue = d.name("proc1"), d.name("proc2"), d.name("sockq")
        do_this_name, do_something_name = d.name("proc2.do_this"), d.name("proc1.do_something")
        repo = {"gitrepo": str(ROOT), "modulepath": "examples/processors"}

        @processor(name=proc2, module="pyfi.processors.sample", concurrency=1, **repo)
        class ProcessorB(ProcessorBase):
            @socket(name=do_this_name, processor=proc2, arguments=True, queue={"name": queue})
            def do_this(message: str) -> str:
                return "Do this: " + str(message)

        @processor(name=proc1, module="pyfi.processors.sample", concurrency=1, **repo)
        class ProcessorA(ProcessorBase):
            @plug(name=d.name("plug1"), target=do_this_name, queue={"name": queue})
            @socket(name=do_something_name, processor=proc1, queue={"name": queue})
            def do_something(message: str) -> str:
                return "TEXT:" + str(message)

        d.broker_queues += [do_this_name, do_something_name]
        d.broker_exchanges.append(queue)
        d.start_worker(proc1)
        d.start_worker(proc2)
        handle = ProcessorA.do_something("hi")  # type: ignore[operator]
        assert handle.get(timeout=WAIT) == "TEXT:hi"
        calls = _calls(d, handle.flow, 2)
        plugged = next(c for c in calls if c["name"] == do_this_name)
        assert (plugged["parent"], plugged["args"]) == (handle.id, ["TEXT:hi"])
        assert ProcessorB.do_this("direct").get(timeout=WAIT) == "Do this: direct"  # type: ignore[operator]
    finally:
        api_settings.reset()
