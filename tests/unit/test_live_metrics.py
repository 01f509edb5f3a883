"""The metrics' arithmetic: percentiles, the bounded rings, the shared counters, the totals."""

from __future__ import annotations

import json
import math
import multiprocessing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shellflow.engine.records.metrics import Ring, Row, Totals, percentile, recent, summary
from shellflow.engine.worker.metrics import Meter, Reporter

finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=300), st.sampled_from([1, 50, 90, 99, 100]))
def test_percentile_is_the_nearest_rank(values: list[float], q: int) -> None:
    found = percentile(values, q)
    assert found in values
    ordered = sorted(values)
    at_or_below = sum(1 for v in ordered if v <= found)
    below = sum(1 for v in ordered if v < found)
    # Nearest rank: at least q% of the values are <= it, fewer than q% are < it.
    assert at_or_below >= math.ceil(q / 100 * len(values))
    assert below < max(1, math.ceil(q / 100 * len(values)))


def test_percentile_of_known_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0, 99.0, 100.0,
    )  # fmt: skip
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0


@given(st.lists(finite, max_size=100), st.integers(min_value=1, max_value=20))
def test_a_ring_keeps_the_last_size_samples(latencies: list[float], size: int) -> None:
    ring = Ring(size)
    for i, latency in enumerate(latencies):
        ring.add(1000.0 + i, latency)
    kept = recent(ring.samples, now=1000.0 + len(latencies), window=1e9)
    assert sorted(kept) == sorted(latencies[-size:])


def test_the_window_drops_old_samples_and_unused_slots() -> None:
    ring = Ring(8)
    ring.add(100.0, 5.0)  # too old at 200 with a 60 s window
    ring.add(150.0, 1.0)
    ring.add(190.0, 3.0)
    assert sorted(recent(ring.samples, 200.0, 60.0)) == [1.0, 3.0]
    assert ring.quantiles(200.0) == (1.0, 3.0)
    assert Ring(4).quantiles(200.0) == (None, None)


def test_summary_counts_running_calls() -> None:
    data = summary([10, 6, 1], [0.5, 0.1, 0.2], 7, 2.0)
    assert data == {"started": 10, "finished": 6, "failed": 1, "running": 3, "queued": 7,
                    "rate": 2.0, "p50": 0.2, "p99": 0.5}  # fmt: skip


def _event(worker: str, socket: str = "s", room: str = "p", **data: object) -> dict[str, object]:
    return {"channel": "metrics", "room": room, "socket": socket, "worker": worker, "data": data}


def test_totals_add_workers_up_and_keep_a_stopped_workers_counts() -> None:
    totals = Totals(stale=5)
    a = {"started": 5, "finished": 3, "failed": 1, "running": 1, "queued": 4, "rate": 1.5,
         "p50": 0.1, "p99": 0.3}  # fmt: skip
    b = {"started": 2, "finished": 2, "failed": 0, "running": 0, "queued": 6, "rate": 0.5,
         "p50": 0.2, "p99": 0.25}  # fmt: skip
    assert totals.add(_event("w1", **a), now=0)
    assert totals.add(_event("w2", **b), now=0)
    assert not totals.add({"channel": "task", "room": "p", "socket": "s"}, now=0)
    [row] = totals.rows(now=1)
    assert row == Row("p", "s", workers=2, started=7, finished=5, failed=1, running=1,
                      queued=6, rate=2.0, p50=0.2, p99=0.3)  # fmt: skip
    totals.add(_event("w2", **{**b, "started": 3, "finished": 3}), now=4)
    [row] = totals.rows(now=8)  # w1 silent for 8 s: gone, its counters kept
    assert (row.workers, row.started, row.finished, row.failed, row.running) == (1, 8, 6, 1, 0)
    assert (row.queued, row.p99) == (6, 0.25)


def test_totals_order_sockets_by_throughput() -> None:
    totals = Totals()
    totals.add(_event("w", "slow", rate=0.1, finished=9), now=0)
    totals.add(_event("w", "busy", rate=3.0, finished=1), now=0)
    totals.add(_event("w", "idle"), now=0)
    assert [r.socket for r in totals.rows(now=0)] == ["busy", "slow", "idle"]


def test_a_meter_counts_calls_and_their_latency() -> None:
    meter = Meter(sockets=2, slots=2, ring=4)
    ok = meter.timed(1, lambda x: x * 2)

    def bad() -> None:
        raise ValueError("no")

    failing = meter.timed(1, bad)
    for i in range(6):
        assert ok(i) == 2 * i
    with pytest.raises(ValueError):
        failing()
    counts, latencies = meter.snapshot(1, now=1e12, window=1e12)
    assert counts == [7, 6, 1]
    assert len(latencies) == 4 and all(t >= 0 for t in latencies)  # the ring keeps 4
    assert meter.snapshot(0, now=1e12, window=1e12) == ([0, 0, 0], [])


def _count_in_child(meter: Meter, n: int) -> None:
    counted = meter.timed(0, lambda: None)
    for _ in range(n):
        counted()


def test_a_meter_is_shared_with_forked_processes() -> None:
    meter = Meter(sockets=1, slots=3)
    child = multiprocessing.get_context("fork").Process(target=_count_in_child, args=(meter, 5))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    _count_in_child(meter, 2)
    counts, latencies = meter.snapshot(0, now=1e12, window=1e12)
    assert counts == [7, 7, 0] and len(latencies) == 7


def test_a_reporter_makes_one_message_per_socket_without_any_server() -> None:
    meter = Meter(sockets=2, slots=1)
    meter.timed(0, lambda: None)()
    nowhere = "redis://127.0.0.1:1/0"  # nothing listens: the figures are made, not sent
    reporter = Reporter(meter, nowhere, nowhere, "p", ["s0", "s1"], "p.1@h", "12-34")
    first, second = (json.loads(m) for m in reporter.publish_once())
    assert (first["channel"], first["room"], first["socket"], first["agent"]) == (
        "metrics", "p", "s0", "12-34",
    )  # fmt: skip
    assert first["data"]["started"] == 1 and first["data"]["queued"] is None
    assert second["socket"] == "s1" and second["data"]["started"] == 0
    assert first["id"] != second["id"]


def test_top_draws_one_row_per_socket() -> None:
    from io import StringIO

    from rich.console import Console

    from shellflow.commands.top import _table

    rows = [Row("p", "s\x1b[2J", workers=1, started=3, finished=2, failed=1, queued=5,
                rate=1.25, p50=0.0123, p99=2.5)]  # fmt: skip
    out = StringIO()
    Console(file=out, width=200, no_color=True).print(_table(rows, ("p",)))
    text = out.getvalue()
    assert "2.5s" in text and "flow top: p" in text and "12ms" in text and "1.25" in text
    assert "\x1b" not in text  # a stored name's control characters are written out
