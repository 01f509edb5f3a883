"""What survives what: a stream of 200 calls while one service is lost, on both deployments.

Each scenario streams ``seq 200 | flow task run --stream -s chaos.slow seconds:=0.05`` to a
processor with two worker processes, loses one thing once 20 calls have finished, and then
reports what the user saw and what the records say once the service is back:

- ``results``: lines the stream printed (of 200), and whether they came in the order sent;
- ``exit``: the stream's exit code, and its run time;
- ``no final record``: calls of the stream not ``finished``, ``failed``, ``revoked`` or
  ``dead`` 60 s after the service came back (the table of issue 16 had 116 to 150 here);
- ``redelivered``: calls delivered again (a ``redelivered`` event): their function ran again
  unless the call had already finished (then the record answers; docs/engine.md);
- ``stderr``: the lines the stream wrote while it waited (its one line per outage).

Servers lost are private ones (``tests/private_*.py``: their own ports and folders, stopped
by pid), never the shared ones; the embedded broker is the deployment's own. This is a
bench, not a test: the tests asserting the same things are ``tests/engine/
test_stream_outages.py`` and ``tests/engine/test_network_changes.py``.

    python bench/survival.py [--only NAME ...]

Measured 2026-12-06 on a shared 2-core machine (other jobs running), printed in
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import FlowRunner, _flow_executable  # noqa: E402
from tests.engine.chaos import chaos_network  # noqa: E402
from tests.engine.conftest import Deployment, deploy  # noqa: E402
from tests.waiting import poll  # noqa: E402

LINES = 200
FINAL = "('finished', 'failed', 'revoked', 'dead')"


@dataclass
class Outcome:
    name: str
    printed: int
    in_order: bool
    code: int
    seconds: float
    unfinished: int
    twice: int
    waited: list[str]


def _stream(d: Deployment, socket: str, *options: str) -> subprocess.Popen[str]:
    flow = " ".join(_flow_executable())
    env = {**os.environ, **d.env}
    env.pop("SHELLFLOW_FLOW", None)
    script = f"seq {LINES} | {flow} task run --stream -s {socket} seconds:=0.05 {' '.join(options)}"
    return subprocess.Popen(["bash", "-c", "set -o pipefail; " + script], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip


def _finished(d: Deployment) -> int:
    return int(d.query("SELECT count(*) FROM call WHERE state = 'finished'")[0][0])


def run(name: str, d: Deployment, lose: Callable[[Deployment, dict[str, str]], None],
        *options: str) -> Outcome:  # fmt: skip
    """Stream, lose a service after 20 calls, wait for the records to settle; the outcome."""
    names = chaos_network(d)
    d.start_worker(names["processor"], concurrency=2)
    started = time.perf_counter()
    stream = _stream(d, names["slow"], *options)
    ended: list[float] = []  # when the stream exited, which may be while the service is away
    watcher = threading.Thread(target=lambda: (stream.wait(), ended.append(time.perf_counter())),
                               daemon=True)  # fmt: skip
    watcher.start()
    try:
        poll(lambda: _finished(d) >= 20, 120, "20 calls to finish")
        lose(d, names)
        out, err = stream.communicate(timeout=600)
    finally:
        if stream.poll() is None:
            os.killpg(stream.pid, signal.SIGKILL)
            stream.wait()
    watcher.join(10)
    seconds = (ended[0] if ended else time.perf_counter()) - started
    lines = out.splitlines()
    settled = f"SELECT count(*) FROM call WHERE state NOT IN {FINAL}"
    deadline = time.monotonic() + 60
    while d.query(settled)[0][0] and time.monotonic() < deadline:
        time.sleep(0.5)
    twice = "SELECT count(DISTINCT call_id) FROM event WHERE name = 'redelivered'"
    return Outcome(
        name, len(lines), lines == sorted(lines, key=int), stream.returncode,
        seconds, int(d.query(settled)[0][0]), int(d.query(twice)[0][0]), _said(err),
    )  # fmt: skip


def _said(err: str) -> list[str]:
    """The stream's stderr, its per-call lines counted rather than listed."""
    lines = [line for line in err.splitlines() if line.strip()]
    per_call = [line for line in lines if line.startswith("flow: record ")]
    others = [line for line in lines if not line.startswith("flow: record ")]
    if per_call:
        others.insert(0, f"{len(per_call)} lines like: {per_call[0]}")
    return others if len(others) <= 4 else [*others[:3], others[-1]]


def _broker_pid(d: Deployment) -> int:
    (found,) = Path(d.env["SHELLFLOW_HOME"]).rglob("broker.pid")
    return int(found.read_text().strip())


def _kill_a_pool_process(d: Deployment, _: dict[str, str]) -> None:
    """SIGKILL one of the worker's pool processes (a child of its main process)."""
    main = d.workers[-1].pid
    children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    os.kill(int(children[0]), signal.SIGKILL)


def _delete_socket(d: Deployment, names: dict[str, str]) -> None:
    d.run("delete", "socket", "-n", names["slow"], "--force")


@contextmanager
def _plain(kind: str, flow: FlowRunner) -> Iterator[Deployment]:
    with deploy(kind, flow) as d:
        yield d


@contextmanager
def _on_private_redis(flow: FlowRunner) -> Iterator[Deployment]:
    from tests.private_redis import private_redis

    with private_redis() as redis, deploy("distributed", flow) as d:
        d.env["SHELLFLOW_BACKEND"] = d.env["SHELLFLOW_PUBSUB"] = redis.url
        d.redis = redis  # type: ignore[attr-defined]
        yield d


@contextmanager
def _on_private_rabbit(flow: FlowRunner) -> Iterator[Deployment]:
    from tests.private_rabbitmq import private_rabbitmq

    with private_rabbitmq() as rabbit, deploy("distributed", flow, broker=rabbit.url) as d:
        d.rabbit = rabbit  # type: ignore[attr-defined]
        yield d


@contextmanager
def _on_private_postgres(flow: FlowRunner) -> Iterator[Deployment]:
    from tests.private_postgres import private_postgres

    with private_postgres() as pg, deploy("distributed", flow) as d:
        d.env["SHELLFLOW_DB"] = pg.url
        d.setup("db", "init")
        d.pg = pg  # type: ignore[attr-defined]
        yield d


def _redis_back_after(seconds: float) -> Callable[[Deployment, dict[str, str]], None]:
    def lose(d: Deployment, _: dict[str, str]) -> None:
        d.redis.kill()  # type: ignore[attr-defined]
        time.sleep(seconds)
        d.redis.start()  # type: ignore[attr-defined]

    return lose


def _rabbit_stopped(d: Deployment, _: dict[str, str]) -> None:
    d.rabbit.ctl("stop_app")  # type: ignore[attr-defined]
    time.sleep(10)
    d.rabbit.ctl("start_app")  # type: ignore[attr-defined]


def _postgres_restarted(d: Deployment, _: dict[str, str]) -> None:
    d.pg.stop()  # type: ignore[attr-defined]
    time.sleep(5)
    d.pg.start()  # type: ignore[attr-defined]


def _embedded_broker_killed(d: Deployment, _: dict[str, str]) -> None:
    os.kill(_broker_pid(d), signal.SIGKILL)


Scenario = tuple[str, Callable[[FlowRunner], AbstractContextManager[Deployment]],
                 Callable[[Deployment, dict[str, str]], None], tuple[str, ...]]  # fmt: skip

SCENARIOS: list[Scenario] = [
    ("embedded: broker kill -9", lambda f: _plain("embedded", f), _embedded_broker_killed, ()),
    ("embedded: a pool process kill -9", lambda f: _plain("embedded", f), _kill_a_pool_process,
     ()),
    ("embedded: socket deleted --force", lambda f: _plain("embedded", f), _delete_socket, ()),
    ("distributed: RabbitMQ stop_app 10 s", _on_private_rabbit, _rabbit_stopped, ()),
    ("distributed: Redis kill -9, back in 2 s", _on_private_redis, _redis_back_after(2), ()),
    ("distributed: Redis down 20 s, --reconnect-timeout 5", _on_private_redis,
     _redis_back_after(20), ("--reconnect-timeout", "5")),
    ("distributed: PostgreSQL stopped 5 s", _on_private_postgres, _postgres_restarted, ()),
    ("distributed: a pool process kill -9", lambda f: _plain("distributed", f),
     _kill_a_pool_process, ()),
    ("distributed: socket deleted --force", lambda f: _plain("distributed", f), _delete_socket,
     ()),
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="scenarios whose name has this")
    args = parser.parse_args()
    print("| what was lost | results | exit | no final record | redelivered | stream said |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, setting, lose, options in SCENARIOS:
        if args.only and not any(part in name for part in args.only):
            continue
        try:
            with setting(FlowRunner()) as d:
                got = run(name, d, lose, *options)
        except Exception as exc:  # one scenario's failure is a row, not the end of the table
            print(f"| {name} | error: {type(exc).__name__}: {exc} | | | | |", flush=True)
            continue
        order = "" if got.in_order else ", out of order"
        said = "<br>".join(line.replace("|", "\\|")[:200] for line in got.waited) or "nothing"
        print(f"| {name} | {got.printed}/{LINES}{order} | {got.code} after {got.seconds:.1f} s"
              f" | {got.unfinished} | {got.twice} | {said} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
