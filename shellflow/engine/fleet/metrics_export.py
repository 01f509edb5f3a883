"""The node's metrics in the Prometheus text format (``flow agent start --metrics-port``).

The agent subscribes to every processor's ``metrics`` channel
(``shellflow.engine.records.metrics``) and keeps the messages of the workers it started
(their ``agent`` field is its own ``PID-START``); a scrape adds them up per socket
(:class:`~shellflow.engine.records.metrics.Totals`): counters summed over the workers, a
worker that stopped keeping its last counts in the total so that a counter never goes back
while the agent runs. Served by ``prometheus_client``'s HTTP server on a thread; every
sample has the labels ``node``, ``processor`` and ``socket``:

==================================  =======  ===============================================
shellflow_calls_started_total       counter  calls started by this node's workers
shellflow_calls_finished_total      counter  calls that returned
shellflow_calls_failed_total        counter  calls that ended with an error (dead ones too)
shellflow_calls_running             gauge    calls running now
shellflow_queue_messages            gauge    messages waiting in the socket's queue
shellflow_call_latency_seconds      gauge    latency over the last minute; label
                                             ``quantile`` 0.5 or 0.99 (the slowest worker's)
shellflow_call_rate                 gauge    calls ended per second over the last minute
shellflow_workers                   gauge    this node's workers serving the socket
==================================  =======  ===============================================
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from shellflow.engine.records.events import carries_live_events, decoded, redis_client
from shellflow.engine.records.metrics import CHANNEL, Totals
from shellflow.errors import UsageError
from shellflow.redact import mask_text, mask_url

log = logging.getLogger(__name__)
LABELS = ["node", "processor", "socket"]
NAMES = (
    "shellflow_calls_started_total", "shellflow_calls_finished_total",
    "shellflow_calls_failed_total", "shellflow_calls_running", "shellflow_queue_messages",
    "shellflow_call_latency_seconds", "shellflow_call_rate", "shellflow_workers",
)  # fmt: skip


def listen_address(value: str) -> tuple[str, int]:
    """``PORT`` (every interface) or ``HOST:PORT`` -> (host, port); UsageError otherwise."""
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--metrics-port {value!r}: expected PORT or HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class NodeMetrics:
    """Collects this agent's workers' metrics and serves them over HTTP."""

    def __init__(self, pubsub: str, node: str, agent: str, address: str) -> None:
        self.pubsub, self.node, self.agent = pubsub, node, agent
        self.host, self.port = listen_address(address)
        self.totals = Totals()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- prometheus_client's collector interface ----------------------------------------
    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self.lock:
            rows = self.totals.rows(time.monotonic())
        p = "shellflow_"
        counters = {name: CounterMetricFamily(f"{p}calls_{name}", f"Calls {name}", labels=LABELS)
                    for name in ("started", "finished", "failed")}  # fmt: skip
        running = GaugeMetricFamily(f"{p}calls_running", "Calls running now", labels=LABELS)
        queued = GaugeMetricFamily(f"{p}queue_messages", "Messages waiting", labels=LABELS)
        latency = GaugeMetricFamily(f"{p}call_latency_seconds", "Call latency, last minute",
                                    labels=[*LABELS, "quantile"])  # fmt: skip
        rate = GaugeMetricFamily(f"{p}call_rate", "Calls ended per second", labels=LABELS)
        workers = GaugeMetricFamily(f"{p}workers", "Workers serving the socket", labels=LABELS)
        for row in rows:
            labels = [self.node, row.processor, row.socket]
            counters["started"].add_metric(labels, row.started)
            counters["finished"].add_metric(labels, row.finished)
            counters["failed"].add_metric(labels, row.failed)
            running.add_metric(labels, row.running)
            if row.queued is not None:
                queued.add_metric(labels, row.queued)
            for quantile, value in (("0.5", row.p50), ("0.99", row.p99)):
                if value is not None:
                    latency.add_metric([*labels, quantile], value)
            rate.add_metric(labels, row.rate)
            workers.add_metric(labels, row.workers)
        yield from (*counters.values(), running, queued, latency, rate, workers)

    # -- life -------------------------------------------------------------------------------
    def start(self) -> NodeMetrics:
        from prometheus_client import CollectorRegistry, start_http_server

        if not carries_live_events(self.pubsub):
            raise UsageError(f"--metrics-port needs a Redis pub/sub URL; {mask_url(self.pubsub)}"
                             " carries none")  # fmt: skip
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=registry)
        except OSError as exc:
            raise UsageError(f"--metrics-port: cannot listen on {self.host}:{self.port}:"
                             f" {exc.strerror or exc}") from None  # fmt: skip
        self._thread = threading.Thread(target=self._listen, name="shellflow-metrics",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        log.info("metrics of node %s on http://%s:%d/metrics", self.node, self.host, self.port)
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        """Keep the latest message of each of this agent's workers (subscribing again after
        a pub/sub outage)."""
        warned = False
        while not self.stopping.is_set():
            try:
                pubsub = redis_client(self.pubsub).pubsub()
                pubsub.psubscribe(f"*.{CHANNEL}")
                warned = False
                while not self.stopping.is_set():
                    raw = pubsub.get_message(timeout=0.5)
                    if raw is None or raw.get("type") != "pmessage":
                        continue
                    event = decoded(raw["data"])
                    if event is not None and event.get("agent") == self.agent:
                        with self.lock:
                            self.totals.add(event, time.monotonic())
            except Exception as exc:
                if not warned:
                    log.warning("metrics: pub/sub unavailable at %s: %s", mask_url(self.pubsub),
                                mask_text(f"{type(exc).__name__}: {exc}"))  # fmt: skip
                    warned = True
                self.stopping.wait(1.0)
