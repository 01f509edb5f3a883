"""A worker's watchdog ends its process (SIGTERM: Celery's warm shutdown) once the agent it
watches is gone, and leaves it alone while that agent runs."""

from __future__ import annotations

import signal
import subprocess
import sys

WATCHING = """
import sys, threading
from shellflow.engine.pids import ProcessId
from shellflow.engine.worker.watchdog import watch
watch(ProcessId.of(int(sys.argv[1])), every=0.05)
print("watching", flush=True)
threading.Event().wait()
"""


def test_the_watchdog_stops_its_process_once_the_agent_is_gone() -> None:
    agent = subprocess.Popen(["sleep", "600"])
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHING, str(agent.pid)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert watcher.stdout is not None and watcher.stdout.readline() == "watching\n"
        assert watcher.poll() is None  # the agent runs: the worker serves on
        agent.kill()
        agent.wait()
        assert watcher.wait(timeout=60) == -signal.SIGTERM
    finally:
        for proc in (agent, watcher):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
