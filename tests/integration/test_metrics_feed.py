"""The live metrics reader ``flow top`` and the dashboard share, on the real Redis pub/sub:
what it keeps (its scope), and ``flow top`` drawing from it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from tests.conftest import REDIS_URL, require_service


def _message(room: str, socket: str, worker: str, finished: int, queued: int) -> bytes:
    from shellflow.engine.records.metrics import message, summary

    data = summary((finished, finished, 0), [0.02], queued, 2.0)
    return message(room, socket, worker, None, 1, "2026-01-02T03:04:05+00:00", data)


def _processor(tag: str) -> str:
    return f"feed-{tag}-{uuid.uuid4().hex[:8]}"


def _fed(feed: Any, publish: Any, want: int) -> None:
    """Publish and read until the feed has kept ``want`` (worker, socket) reports."""
    for _ in range(200):
        publish()
        while feed.poll(0.05):
            pass
        if len(feed.totals.latest) >= want:
            return
    raise AssertionError(f"the feed kept {len(feed.totals.latest)} reports, not {want}")


def test_a_scoped_feed_keeps_only_its_processors_true_reports() -> None:
    require_service("redis")
    from shellflow.engine.records.events import redis_client
    from shellflow.services.metrics import MetricsFeed

    mine, other = _processor("mine"), _processor("other")
    pub = redis_client(REDIS_URL)
    feed = MetricsFeed(REDIS_URL, [mine])
    try:
        feed.confirm()

        def publish() -> None:
            pub.publish(f"{mine}.metrics", _message(mine, f"{mine}.s", "w1", 3, 1))
            pub.publish(f"{other}.metrics", _message(other, f"{other}.s", "w1", 5, 2))
            pub.publish(f"{mine}.metrics", _message(other, f"{other}.s", "w2", 7, 3))  # posing
            pub.publish(f"{mine}.metrics", b"not json")
            pub.publish(f"{mine}.metrics", json.dumps([1, 2]))

        _fed(feed, publish, 1)
        for _ in range(5):
            publish()
            while feed.poll(0.05):
                pass
        rows = feed.rows(time.monotonic())
        assert [(r.processor, r.socket, r.finished, r.queued) for r in rows] == [
            (mine, f"{mine}.s", 3, 1)
        ]
    finally:
        feed.close()
        pub.close()


def test_an_unscoped_feed_adds_up_every_processors_workers() -> None:
    require_service("redis")
    from shellflow.engine.records.events import redis_client
    from shellflow.model.access import Principal
    from shellflow.services.metrics import MetricsFeed, listen_scope

    assert listen_scope(Principal("owner", local_owner=True)) is None
    bob = Principal("bob", scoped={"LISTEN": frozenset({"a"})})
    assert listen_scope(bob) == frozenset({"a"})
    assert listen_scope(Principal("eve")) == frozenset()
    assert MetricsFeed(REDIS_URL, frozenset()).patterns == []  # nothing subscribed, nothing read

    one, two = _processor("one"), _processor("two")
    pub = redis_client(REDIS_URL)
    feed = MetricsFeed(REDIS_URL)
    try:
        feed.confirm()

        def publish() -> None:
            pub.publish(f"{one}.metrics", _message(one, f"{one}.s", "w1", 3, 4))
            pub.publish(f"{one}.metrics", _message(one, f"{one}.s", "w2", 4, 6))
            pub.publish(f"{two}.metrics", _message(two, f"{two}.s", "w1", 1, 0))

        _fed(feed, publish, 3)  # other tests' metrics may come too: only ours are looked at
        rows = {r.processor: r for r in feed.rows(time.monotonic()) if r.processor in (one, two)}
        assert (rows[one].workers, rows[one].finished, rows[one].queued) == (2, 7, 6)
        assert (rows[two].workers, rows[two].finished) == (1, 1)
    finally:
        feed.close()
        pub.close()


def test_top_shows_the_feeds_rows(cli: Any, initialised_db: str) -> None:
    """``flow top -n PROC --once`` piped: one JSON object per socket, from live messages."""
    require_service("redis")
    from shellflow.engine.records.events import redis_client

    name = _processor("top")
    repo = "https://github.com/radiantone/pyfi-processors"
    cli.ok(
        "-d",
        initialised_db,
        "add",
        "processor",
        "-n",
        name,
        "-g",
        repo,
        "-m",
        "pyfi.processors.sample",
    )
    stop = threading.Event()
    pub = redis_client(REDIS_URL)

    def publish() -> None:
        while not stop.wait(0.1):
            pub.publish(f"{name}.metrics", _message(name, f"{name}.s", "w1", 9, 2))

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        out = cli.ok("-d", initialised_db, "--pubsub", REDIS_URL, "top", "-n", name, "--once")
    finally:
        stop.set()
        thread.join()
        pub.close()
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["processor"], r["socket"], r["finished"], r["queued"]) for r in rows] == [
        (name, f"{name}.s", 9, 2)
    ]
