"""A pub/sub password never reaches a worker's log or a caller's terminal (issue 17.4).

The live channel's Redis is unreachable here (port 1), so each worker warns once that live
events are unavailable: the warning names the URL with its password masked.
"""

from __future__ import annotations

import json

from tests.conftest import FlowRunner
from tests.engine.conftest import build_network, deploy
from tests.waiting import poll

SECRET = "pubsub-SECRET-pw"


def test_a_pubsub_password_is_masked_in_the_worker_log(flow: FlowRunner) -> None:
    with deploy("distributed", flow) as d:
        d.env["SHELLFLOW_PUBSUB"] = f"redis://:{SECRET}@127.0.0.1:1/0"
        network = build_network(d)
        d.start_worker(network["processor"])
        run = d.ok("task", "run", "-s", network["do_something"], "--data", json.dumps("x"))
        assert SECRET not in run.stdout + run.stderr
        warned = "live events unavailable at redis://:***@127.0.0.1:1/0"
        poll(lambda: warned in d.worker_log(), 30, lambda: f"{warned!r} in {d.worker_log()}")
        assert SECRET not in d.worker_log()
