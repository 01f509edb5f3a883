"""The agent: one per node, it makes what runs there match what the database asks for.

It registers its node and itself (hostname, CPUs, memory), heartbeats, and twice a second
reads the processors placed on it: those with a deployment naming its node (the placement,
:mod:`shellflow.engine.fleet.placement`, makes them; never matched by hostname, which
several nodes of one machine share). For each it

- deploys the code (status ``deploying``): a pinned checkout and a virtualenv of its own
  (:mod:`shellflow.engine.fleet.deploy`), in a background thread so one slow ``pip install`` does
  not hold the others back;
- starts ``flow worker start -n PROC -c CPUS`` with that virtualenv's Python,
  handing it this agent's settings on a descriptor, never in its environment (status
  ``running``; see :mod:`shellflow.engine.fleet.launch`), and records its pid and host;
- acts on ``requested_status``: ``paused`` and ``stopped`` stop the worker with a warm
  shutdown (running calls finish, queued ones stay queued), ``running``/``ready`` start it,
  ``removed`` stops it and marks the processor removed;
- restarts a worker that exits on its own, with a growing delay (1 s doubling to 60 s), and
  puts a processor it cannot deploy in ``error`` with the reason (retried the same way);
- restarts the worker when its sockets or CPUs change; redeploys when its source changes,
  only from an allowed repository, at the commit recorded (``trusted``; ``--pull`` moves it).

Workers run in their own process groups: the agent alone stops them (a Ctrl-C at its
terminal reaches the agent, which stops each worker cleanly). On SIGTERM, SIGINT or SIGHUP
it stops every worker, marks the processors and itself stopped. Each worker is told its
agent's process (``--agent PID-START``) and stops taking calls within about a second of
that process's end (:mod:`shellflow.engine.worker.watchdog`): an agent killed with
``kill -9`` leaves no worker serving; one cut off from the database stops them too
(:mod:`shellflow.engine.fleet.lease`). Workers left by an agent that was killed are
stopped when it starts again, too. Its rights: ``agent_rights.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket as pysocket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shellflow.config import Settings
from shellflow.engine.fleet import rows as fleet
from shellflow.engine.fleet.agent_rights import AgentRights
from shellflow.engine.fleet.daemon import PidFile, pidfile_path
from shellflow.engine.fleet.deploy import Deployed, Source
from shellflow.engine.fleet.launch import (
    WORKER_BOOT,
    build_env,
    last_line,
    start_worker,
    terminate,
    worker_folder,
)  # fmt: skip
from shellflow.engine.fleet.lease import Lease
from shellflow.engine.fleet.rows import Placed
from shellflow.engine.fleet.runas import Account
from shellflow.engine.fleet.spools import start_sweeping
from shellflow.engine.fleet.trusted import deploy_placed
from shellflow.engine.pids import ProcessId
from shellflow.redact import mask_url

log = logging.getLogger("shellflow.agent")

POLL = 0.5  # seconds between two reads of the desired state (changes act within 2 s)
HEARTBEAT = 5.0
STOP_TIMEOUT = 60.0  # a worker's warm shutdown may take this long before it is killed
MAX_BACKOFF = 60.0
STABLE_AFTER = 30.0  # a worker up this long has its restart delay reset
RUNNING_REQUESTS = ("ready", "running")


def safe_name(name: str) -> str:
    """A file name for an object name (processor and node names may hold any printable)."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", name)[:120] or "_"


@dataclass
class Managed:
    """What this agent holds for one processor."""

    placed: Placed
    requested: str | None = None  # the last requested_status seen
    seen_source: Source | None = None  # the last code location seen
    future: Future[Deployed] | None = None
    future_source: Source | None = None
    deployed: Deployed | None = None
    deployed_source: Source | None = None
    proc: subprocess.Popen[bytes] | None = None
    serving: tuple[Any, ...] | None = None
    worker_id: str | None = None
    started_at: float = 0.0
    stopping_since: float | None = None
    next_try: float = 0.0
    backoff: float = 0.0
    failure: str = ""  # the last unexpected error, logged once

    def bump(self, now: float) -> float:
        self.backoff = min(MAX_BACKOFF, self.backoff * 2 if self.backoff else 1.0)
        self.next_try = now + self.backoff
        return self.backoff


class Agent(AgentRights):
    def __init__(
        self,
        settings: Settings,
        node: str | None = None,
        cpus: int | None = None,
        *,
        poll: float = POLL,
        stop_timeout: float = STOP_TIMEOUT,
        on_ready: Callable[[Agent], None] | None = None,
        run_as: Account | None = None,
    ) -> None:
        self.settings = settings
        self.hostname = pysocket.gethostname()
        self.node = node or self.hostname
        self.cpus = cpus
        self.poll = poll
        self.stop_timeout = stop_timeout
        self.on_ready = on_ready
        self.run_as = run_as  # the OS user running the processors' code (--run-as)
        self.home = settings.home
        self.managed: dict[str, Managed] = {}
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deploy")
        self.node_id = self.agent_id = self.agent_name = ""
        self._engine: Any = None
        self._broker_failure = ""  # the embedded broker's last failure to start, logged once

    # -- life ----------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Serve until asked to stop (a signal, or :meth:`request_stop`)."""
        from shellflow.engine.transport import embedded_broker as embedded
        from shellflow.model.db import get_engine, translated

        self.authorize("START_AGENT", f"node {self.node}")  # before anything is registered
        self._engine = get_engine(self.settings.db)
        pidfile = PidFile(pidfile_path(self.home, self.node))
        pidfile.acquire()  # one agent per node and home, in the foreground or detached
        restore = self._install_signals()
        try:
            embedded.ensure_for_urls(self.settings.broker, self.settings.backend)
            facts = fleet.machine_facts(self.home, self.cpus)
            with translated(self.settings.db):  # "not initialised", "unavailable": exit codes
                self.node_id, self.agent_id, self.agent_name = fleet.register(
                    self._engine, self.node, self.hostname, facts, ProcessId.current()
                )
            log.info("agent %s serving node %s (%s)", self.agent_name, self.node, self.hostname)
            self._stop_leftovers()
            self._start_scheduler()
            start_sweeping(self._spool_homes(), self.settings.db, self.stopping)
            Lease(self._engine, self.node_id, self._lease_lost).start(self.stopping)
            pidfile.write(os.getpid())  # from now on ``flow agent stop`` can find it
            if self.on_ready is not None:
                self.on_ready(self)
            self._loop()
        finally:
            try:
                self._shutdown()
            finally:
                restore()
                pidfile.release()

    def _spool_homes(self) -> list[Path]:  # see spools.py
        return [self.home] + ([self.run_as.workspace] if self.run_as else [])

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            sig: signal.signal(sig, self.request_stop)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _start_scheduler(self) -> None:
        """Every agent runs a scheduler (scheduled sockets fire once, whoever runs them)."""
        try:
            from shellflow.engine.fleet import scheduler
        except ImportError:  # pragma: no cover - shipped with shellflow
            return
        run = getattr(scheduler, "run", None)
        if run is not None:
            threading.Thread(
                target=run, args=(self.settings, self.stopping.is_set), name="scheduler",
                daemon=True,
            ).start()  # fmt: skip

    def _loop(self) -> None:
        next_beat = 0.0
        failing = ""  # the last failure, logged once rather than twice a second
        while not self.stopping.is_set():
            now = time.monotonic()
            self._keep_broker()
            try:
                if now >= next_beat:
                    self._heartbeat()
                    next_beat = now + HEARTBEAT
                self.reconcile()
                if failing:
                    log.info("reconciling again")
                    failing = ""
            except Exception as exc:  # a database hiccup must not end the agent
                if str(exc) != failing:
                    log.warning("reconcile failed: %s", exc, exc_info=self.settings.debug)
                failing = str(exc) or type(exc).__name__
            self.stopping.wait(self.poll)

    def _keep_broker(self) -> None:
        """Start a dead embedded broker again from its append-only file (workers reconnect)."""
        from shellflow.engine.transport import embedded_broker as embedded
        from shellflow.errors import ServiceUnavailable

        try:
            embedded.ensure_for_urls(self.settings.broker, self.settings.backend)
        except ServiceUnavailable as exc:  # tried again at the next poll
            if str(exc) != self._broker_failure:
                log.warning("%s", exc)
            self._broker_failure = str(exc)
        else:
            self._broker_failure = ""

    def _heartbeat(self) -> None:
        facts = fleet.machine_facts(self.home, self.cpus)
        workers = [m.worker_id for m in self.managed.values() if m.proc and m.worker_id]
        fleet.heartbeat(self._engine, self.node_id, self.agent_id, facts, workers)

    # -- reconciling ---------------------------------------------------------------------
    def reconcile(self) -> None:
        wanted = fleet.placed(self._engine, self.node_id)
        for name in sorted(set(wanted) | set(self.managed)):
            spec = wanted.get(name)
            try:
                self._reconcile_one(name, spec)
            except Exception as exc:  # say it once, and try again later rather than at once
                m = self.managed.get(name)
                if m is None or m.failure != str(exc):
                    log.warning("processor %s: %s", name, exc, exc_info=self.settings.debug)
                if m is not None:
                    m.failure = str(exc)
                    m.bump(time.monotonic())

    def _reconcile_one(self, name: str, spec: Placed | None) -> None:
        now = time.monotonic()
        m = self.managed.get(name)
        if spec is None:  # deleted, or placed elsewhere now
            if m is not None:
                self._reap(m, now)
                if m.proc is not None:
                    self._stop(m, now)
                    return
                if m.worker_id:
                    fleet.worker_removed(self._engine, m.worker_id)
                del self.managed[name]
            return
        if m is None:
            m = self.managed[name] = Managed(placed=spec)
        m.placed = spec
        if (spec.requested, spec.source) != (m.requested, m.seen_source):
            # Someone asked for something, or changed the code: act now, not after a delay.
            m.requested, m.seen_source = spec.requested, spec.source
            m.backoff, m.next_try = 0.0, 0.0
        self._reap(m, now)
        if not (spec.deploy and spec.requested in RUNNING_REQUESTS):
            self._keep_down(m, spec, now)
            return
        self.authorize("START_PROCESSOR", name)  # deploys, starts and keeps its worker up
        if m.deployed is not None and m.deployed_source != spec.source:
            if m.proc is not None:  # new code: stop the old worker first
                self._stop(m, now)
                return
            m.deployed = None
        if m.proc is not None:
            if m.serving != spec.serving:  # sockets or CPUs changed
                self._stop(m, now)
            elif m.stopping_since is None:
                if now - m.started_at > STABLE_AFTER:
                    m.backoff = 0.0
                self._status(spec, "running", self._warning(m))
            return
        if m.deployed is None and not self._deployment_done(m, spec, now):
            return
        if now < m.next_try:
            return
        if not spec.sockets:
            self._status(spec, "ready", "deployed; no sockets to serve")
            return
        self._spawn(m, spec, now)

    def _keep_down(self, m: Managed, spec: Placed, now: float) -> None:
        if m.proc is not None:
            self.authorize("STOP_PROCESSOR", spec.name)
            self._stop(m, now)  # its status is written once it has exited
            return
        m.deployed = None  # deploy again on start (the recorded commit: cheap when cached)
        status = {"paused": "paused", "removed": "removed"}.get(spec.requested, "stopped")
        if spec.requested == "removed" and m.worker_id:
            fleet.worker_removed(self._engine, m.worker_id)
            m.worker_id = None
        self._status(spec, status, None if spec.deploy else "deploy is off for this processor")

    def _deployment_done(self, m: Managed, spec: Placed, now: float) -> bool:
        """Start or collect the deployment; True once ``m.deployed`` is ready."""
        if m.future is None:
            if now >= m.next_try:
                if spec.status != "error":  # retrying after an error keeps the error shown
                    self._status(spec, "deploying", None)
                log.info("deploying %s from %s (%s)", spec.name, spec.source.gitrepo,
                         spec.source.pin)  # fmt: skip
                m.future = self.pool.submit(deploy_placed, self._engine, self.settings,
                                            self.home, spec.id, spec.source,
                                            build_env(self.settings), self.run_as)  # fmt: skip
                m.future_source = spec.source
            return False
        if not m.future.done():
            return False
        future, m.future = m.future, None
        if m.future_source != spec.source:
            return False  # the processor changed while deploying: deploy again
        try:
            deployed = future.result()
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            delay = m.bump(now)
            log.warning("cannot deploy %s: %s", spec.name, message)
            self._status(spec, "error", f"{message} (retrying in {delay:g} s)")
            self._note(spec, f"deploy failed: {message}")
            return False
        m.deployed, m.deployed_source = deployed, spec.source
        log.info("deployed %s at %s in %s%s", spec.name, deployed.commit[:12], deployed.venv,
                 f" ({deployed.warning})" if deployed.warning else "")  # fmt: skip
        if deployed.warning:
            self._note(spec, f"deployed with a warning: {deployed.warning}")
        return True

    @staticmethod
    def _warning(m: Managed) -> str | None:
        return m.deployed.warning if m.deployed is not None else None

    def _status(self, spec: Placed, status: str, reason: str | None) -> None:
        if (spec.status, spec.reason) == (status, reason):
            return
        self.authorize("UPDATE_PROCESSOR", spec.name)
        fleet.set_status(self._engine, spec.id, status, reason)
        spec.status, spec.reason = status, reason  # what the next read will say: no rewrite

    def _note(self, spec: Placed, text: str) -> None:
        try:
            fleet.note(self._engine, spec.id, text)
        except Exception as exc:  # a log line is not worth failing for
            log.debug("cannot write a log line for %s: %s", spec.name, exc)

    # -- worker processes ----------------------------------------------------------------
    celery_events = False  # flow agent start --celery-events: its workers send task events

    def worker_command(self, m: Managed, spec: Placed) -> list[str]:
        assert m.deployed is not None
        command = [str(m.deployed.python), "-P", "-S", WORKER_BOOT,  # see launch.py
                   "-n", spec.name, "-c", str(spec.concurrency),
                   "--agent", str(ProcessId.current())]  # fmt: skip
        command += ["--celery-events"] if self.celery_events else []
        command += ["--deployment", spec.deployment_id] if spec.deployment_id else []  # share
        for path in m.deployed.paths:
            command += ["--path", path]
        return command

    def _spawn(self, m: Managed, spec: Placed, now: float) -> None:
        assert m.deployed is not None
        workdir = worker_folder(self.home, self.run_as, safe_name(spec.name))
        logfile = self.log_path(spec.name)
        proc = start_worker(self.worker_command(m, spec), self.settings, m.deployed.venv,
                            workdir, logfile, self.home, self.run_as)  # fmt: skip
        m.proc, m.serving, m.started_at, m.stopping_since = proc, spec.serving, now, None
        m.worker_id = fleet.worker_started(
            self._engine, name=f"{spec.name}@{self.node}", processor_id=spec.id,
            agent_id=self.agent_id, deployment_id=spec.deployment_id,
            process=ProcessId.of(proc.pid),
            hostname=self.hostname, concurrency=spec.concurrency, workdir=str(workdir),
            broker=mask_url(self.settings.broker), backend=mask_url(self.settings.backend),
        )  # fmt: skip
        log.info("started worker of %s (pid %d, %d CPUs)", spec.name, proc.pid, spec.concurrency)
        self._status(spec, "running", self._warning(m))

    def log_path(self, processor: str) -> Path:
        folder = self.home / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{safe_name(processor)}.log"

    def _lease_lost(self, _reason: str) -> None:  # see lease.py: work may go elsewhere
        for m in list(self.managed.values()):
            self._stop(m, time.monotonic())

    def _stop(self, m: Managed, now: float) -> None:
        """Ask the worker for a warm shutdown; kill it when it overstays."""
        if m.proc is None:
            return
        if m.stopping_since is None:
            log.info("stopping worker of %s (pid %d)", m.placed.name, m.proc.pid)
            m.stopping_since = now
            with contextlib.suppress(ProcessLookupError):
                m.proc.send_signal(signal.SIGTERM)
        elif now - m.stopping_since > self.stop_timeout:
            log.warning("worker of %s did not stop in %g s; killing it", m.placed.name,
                        self.stop_timeout)  # fmt: skip
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(m.proc.pid, signal.SIGKILL)

    def _reap(self, m: Managed, now: float) -> None:
        """Notice a worker that has exited: a stop we asked for, or a crash."""
        if m.proc is None or m.proc.poll() is None:
            return
        code = m.proc.returncode
        expected = m.stopping_since is not None
        m.proc, m.stopping_since, m.serving = None, None, None
        if m.worker_id:
            fleet.worker_ended(self._engine, m.worker_id, "stopped" if expected else "error")
        if expected:
            log.info("worker of %s stopped", m.placed.name)
            return
        tail = last_line(self.log_path(m.placed.name))
        delay = m.bump(now)
        reason = f"worker exited with code {code}" + (f": {tail}" if tail else "")
        log.warning("%s: %s; restarting in %g s", m.placed.name, reason, delay)
        self._note(m.placed, reason)
        self._status(m.placed, "error", f"{reason} (restarting in {delay:g} s)")

    def _stop_leftovers(self) -> None:
        """Stop workers a previous run of this agent left running (it was killed)."""
        leftovers = fleet.leftover_workers(self._engine, self.agent_id, self.hostname)
        for worker_id, process in leftovers:
            if process.known and process.alive():
                log.info("stopping worker pid %d left by a previous run", process.pid)
                terminate(process.pid, self.stop_timeout)
            elif process.alive():  # a row without a start time: the pid may be anyone's now
                log.warning("not stopping pid %d: nothing proves it is still the worker a "
                            "previous run left", process.pid)  # fmt: skip
            fleet.worker_ended(self._engine, worker_id)

    def _shutdown(self) -> None:
        if not self.agent_id:
            self.pool.shutdown(wait=False, cancel_futures=True)
            return
        log.info("stopping %d workers", sum(1 for m in self.managed.values() if m.proc))
        now = time.monotonic()
        for m in self.managed.values():
            self._stop(m, now)
        deadline = now + self.stop_timeout
        while any(m.proc is not None and m.proc.poll() is None for m in self.managed.values()):
            if time.monotonic() > deadline:
                for m in self.managed.values():
                    if m.proc is not None and m.proc.poll() is None:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(m.proc.pid, signal.SIGKILL)
                        m.proc.wait()
                break
            time.sleep(0.05)
        if any(m.future is not None and not m.future.done() for m in self.managed.values()):
            log.info("waiting for deployments in progress to finish")
        self.pool.shutdown(wait=True, cancel_futures=True)
        for m in self.managed.values():
            try:
                if m.worker_id:
                    fleet.worker_ended(self._engine, m.worker_id)
                if m.placed.status in ("running", "deploying", "error") and (
                    m.placed.requested in RUNNING_REQUESTS
                ):
                    reason = f"agent {self.agent_name} stopped"
                    fleet.set_status(self._engine, m.placed.id, "stopped", reason)
            except Exception as exc:
                log.warning("cannot record the stop of %s: %s", m.placed.name, exc)
        try:
            fleet.unregister(self._engine, self.node_id, self.agent_id)
        except Exception as exc:
            log.warning("cannot mark the agent stopped: %s", exc)
        log.info("agent %s stopped", self.agent_name)
