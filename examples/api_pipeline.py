#!/usr/bin/env python3
"""The Python API end to end (spec 1.2 listing 1, 5.5.2, 12.2), on the embedded default.

    .venv/bin/python examples/api_pipeline.py

Builds the quick start's network with the object API (idempotent: a second run creates
nothing), starts a worker for it, calls sockets one at a time, runs the spec's nested
pipeline/parallel/funnel workflow, composes socket commands with plumbum, prints the call
graph of the workflow, and stops the worker. Everything lives in SHELLFLOW_HOME
(default: .demo-api/ next to this folder) unless SHELLFLOW_DB/SHELLFLOW_BROKER/... say else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("SHELLFLOW_HOME", str(ROOT / ".demo-api"))
os.environ.setdefault("SHELLFLOW_INI", os.path.join(os.environ["SHELLFLOW_HOME"], "none.ini"))

import shellflow  # noqa: E402  (after the environment it reads)
from shellflow import Function, Processor, Socket, funnel, parallel, pipeline  # noqa: E402
from shellflow.client.commands import flow_program, sockets  # noqa: E402


def flow(*args: str) -> str:
    """Run a ``flow`` command (for what the Python API leaves to the CLI: db init, graphs)."""
    return subprocess.run([*flow_program(), *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def build_network() -> None:
    """The quick start's network (spec 5.5), plus ``gather``, which returns its arguments."""
    proc1 = Processor(
        name="proc1", gitrepo=str(ROOT), modulepath="examples/processors",
        module="pyfi.processors.sample", hostname="localhost", concurrency=2,
    )  # fmt: skip
    for function in ("do_something", "do_this", "gather"):
        Socket(name=f"pyfi.processors.sample.{function}", processor=proc1,
               queue={"name": "pyfi.queue1"}, task=function)  # fmt: skip


def main() -> None:
    settings = shellflow.configure()  # the environment's settings, made explicit
    print(f"model database: {settings.db}", file=sys.stderr)
    flow("db", "init")
    build_network()
    worker = subprocess.Popen([*flow_program(), "worker", "start", "-n", "proc1", "-c", "2",
                               "--path", str(HERE / "processors")])  # fmt: skip
    try:
        demo()
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def demo() -> None:
    # Spec 5.5.2: a socket is a function; .p gives its partial for workflows.
    do_something = Function(name="pyfi.processors.sample.do_something")
    do_this = Function(name="pyfi.processors.sample.do_this")
    print("one call:", do_something("Some text!").get(timeout=120))

    # A pipeline passes each result on (as the first argument of the next step).
    print("pipeline:", pipeline([do_something.p("HI"), do_this.p()])().get(timeout=120))

    # Spec 1.2 listing 1, with a socket that returns what it receives, to show the shape.
    step = Function(name="pyfi.processors.sample.gather").p
    _pipeline = pipeline([
        step("One"),
        step("Two"),
        parallel([step("Four"), step("Five")]),
        step("Three"),
    ])  # fmt: skip
    _parallel = parallel([_pipeline, step("Six"), step("Seven")])
    _funnel = funnel([step("Eight"), _parallel], step("Nine"))
    result = _funnel(step("Four"))  # the funnel's result is sent on to step("Four")
    print("FUNNEL:", result.get(timeout=300))
    print(flow("ls", "call", "--id", result.id, "--graph"), end="")

    # Socket commands as plumbum commands: a real pipeline of processes, one flow run.
    from plumbum import local

    s = sockets()
    print("plumbum:", (s["pyfi.processors.sample.do_something"] << "hi there"
                       | s["pyfi.processors.sample.do_this"] | local["tr"]["a-z", "A-Z"])(),
          end="")  # fmt: skip


if __name__ == "__main__":
    main()
