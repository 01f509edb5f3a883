"""A worker that outlives its agent stops taking calls (``flow worker start --agent``).

The agent starts each worker in a process group of its own (a Ctrl-C at the agent's
terminal must reach the agent, which stops its workers cleanly), so a worker does not die
with its agent. An agent killed with ``kill -9`` (or by the OOM killer) would leave its
workers consuming, on a node the placement may soon give up. So the agent names its own
process to each worker (pid and start time: :class:`shellflow.engine.pids.ProcessId`, never a
bare pid that another process may take), and the worker looks every :data:`CHECK_EVERY`
seconds: once that process is gone it asks itself for a warm shutdown (SIGTERM: it takes no
new call, the calls running finish and are recorded, queued ones stay queued for another
worker). The agent, started again, also stops any worker it left (``Agent._stop_leftovers``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from shellflow.engine.pids import ProcessId

CHECK_EVERY = 1.0  # seconds: a worker stops taking calls within this of its agent's end
log = logging.getLogger("shellflow.worker")


def watch(agent: ProcessId, every: float = CHECK_EVERY) -> threading.Thread:
    """Start a thread that SIGTERMs this process once ``agent`` no longer runs."""
    me = os.getpid()

    def look() -> None:
        stop = threading.Event()
        while agent.alive():
            stop.wait(every)
        log.warning("agent %s is gone: stopping this worker (warm shutdown)", agent)
        os.kill(me, signal.SIGTERM)

    thread = threading.Thread(target=look, name="agent-watchdog", daemon=True)
    thread.start()
    return thread
