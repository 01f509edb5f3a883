"""Start-up time of the ``flow`` command against bare Python.

Measures the median wall time of ``python -c pass``, ``flow --version``, ``flow --help`` and
``flow ls queues`` (on an empty, initialised SQLite database in a temporary SHELLFLOW_HOME).
The commands run interleaved, round-robin, in one process, so a slow moment of the machine
hits all of them alike and the ratios stay comparable. Prints a table and PASS/MISS per
target; it reports and always exits 0 (timing belongs here, not in the test suite).

    python bench/cli_startup.py [--rounds 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BASELINE = "python -c pass"


@dataclass(frozen=True)
class Case:
    label: str
    argv: list[str]
    target: float | None  # the largest acceptable ratio to bare Python, if any


def flow_script() -> Path:
    """The ``flow`` console script installed next to this interpreter."""
    script = Path(sys.executable).with_name("flow")
    if not script.exists():
        sys.exit(f"cli_startup: no flow script next to {sys.executable}; install the project")
    return script


def bench_env(home: Path) -> dict[str, str]:
    """The caller's environment without its shellflow settings, living in ``home``.

    PYTHONDONTWRITEBYTECODE is dropped: an installed package has its bytecode compiled, and
    without the cache every shellflow module would be compiled from source on each start.
    """
    drop = ("PYTHONDONTWRITEBYTECODE",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELLFLOW_") and k not in drop}
    env["SHELLFLOW_HOME"] = str(home)
    env["SHELLFLOW_INI"] = str(home / "shellflow.ini")  # none: keep ~/.config out of it
    return env


def run_once(argv: Sequence[str], env: Mapping[str, str]) -> float:
    """Wall time of one run in seconds; a failing command stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"cli_startup: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


def measure(
    cases: Sequence[Case], env: Mapping[str, str], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Round-robin over the cases; the starting case rotates so none always runs first."""
    times: dict[str, list[float]] = {case.label: [] for case in cases}
    for round_no in range(warmup + rounds):
        shift = round_no % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            elapsed = run_once(case.argv, env)
            if round_no >= warmup:
                times[case.label].append(elapsed)
    return times


def report(cases: Sequence[Case], times: Mapping[str, list[float]], rounds: int) -> str:
    base = statistics.median(times[BASELINE])
    lines = [
        f"flow start-up, median of {rounds} interleaved rounds ({sys.executable})",
        "",
        f"{'command':<16} {'median ms':>9} {'min ms':>7} {'ratio':>6}  {'target':>6}  result",
    ]
    for case in cases:
        median = statistics.median(times[case.label])
        ratio = median / base
        target = f"<={case.target:g}x" if case.target else ""
        verdict = "" if case.target is None else ("PASS" if ratio <= case.target else "MISS")
        lines.append(
            f"{case.label:<16} {median * 1000:>9.1f} {min(times[case.label]) * 1000:>7.1f} "
            f"{ratio:>5.1f}x  {target:>6}  {verdict}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds (default 3)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    flow = str(flow_script())
    cases = [
        Case(BASELINE, [sys.executable, "-c", "pass"], None),
        Case("flow --version", [flow, "--version"], 5),
        Case("flow --help", [flow, "--help"], 5),
        Case("flow ls queues", [flow, "ls", "queues"], 15),
    ]
    with tempfile.TemporaryDirectory(prefix="shellflow-bench-") as tmp:
        env = bench_env(Path(tmp))
        run_once([flow, "db", "init"], env)
        times = measure(cases, env, args.rounds, args.warmup)
    print(report(cases, times, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
