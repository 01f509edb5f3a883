"""`flow task run --stream` in real shell pipes, on both deployments.

Each record of stdin is one call; results come back in input order, one per line; failures
go to stderr with their record number; `| head -1` ends quietly; --halt stops early.
"""

from __future__ import annotations

import re

from tests.engine.conftest import Deployment
from tests.engine.test_pipelines import _bash

SUMMARY = re.compile(r"^(\d+) calls, (\d+) ok, (\d+) failed in [\d.]+ s", re.M)


def _summary(stderr: str) -> tuple[int, int, int]:
    found = SUMMARY.search(stderr)
    assert found, stderr
    calls, ok, failed = found.groups()
    return int(calls), int(ok), int(failed)


def test_lines_in_input_order_with_records(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network
    d.start_worker(n["processor"], concurrency=2)
    done = _bash(d, f"seq 20 | $FLOW task run --stream -s {n['do_this']}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"Do this: {i}" for i in range(1, 21)]
    assert _summary(done.stderr) == (20, 20, 0)
    assert "Traceback" not in done.stderr
    counted = d.wait_for("SELECT count(*) FROM call WHERE state = 'finished'", (), [(20,)])
    assert counted == [(20,)]
    # Unordered, with one call at a time and keywords: the same results, every one.
    done = _bash(d, f"seq 5 | $FLOW task run --stream --unordered -j 1 -s {n['add_two']} two:=10")
    assert done.returncode == 0, done.stderr
    assert sorted(int(x) for x in done.stdout.split()) == [11, 12, 13, 14, 15]


def test_nul_records_and_ndjson(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network
    d.start_worker(n["processor"], concurrency=2)
    done = _bash(d, f"printf 'a b\\nc\\0d\\0' | $FLOW task run --stream -0 -s {n['do_this']}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Do this: a b\nc\nDo this: d\n"
    done = _bash(
        d,
        'printf \'{"a": 1}\\n\\n[1, 2]\\n"s"\\n\' | '
        f"$FLOW task run --stream --json -s {n['do_this']}",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Do this: {'a': 1}\nDo this: [1, 2]\nDo this: s\n"
    # Without --json, a line that is JSON is read as JSON, any other as a string.
    done = _bash(d, f"printf '1\\nx y\\n' | $FLOW task run --stream -s {n['add_two']} two:=1")
    assert done.returncode == 1
    assert done.stdout == "2\n"
    failure = [line for line in done.stderr.splitlines() if line.startswith("flow: record 2")]
    assert len(failure) == 1 and "TypeError" in failure[0], done.stderr


def test_head_ends_quietly_and_cancels_the_rest(
    deployment: Deployment, network: dict[str, str]
) -> None:
    d, n = deployment, network
    d.start_worker(n["processor"], concurrency=1)
    done = _bash(d, f"seq 300 | $FLOW task run --stream -j 4 -s {n['do_this']} | head -1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Do this: 1\n"
    assert done.stderr == ""
    # Every call the stream sent ends: it ran, or it was cancelled before it started.
    stuck = d.wait_for(
        "SELECT count(*) FROM call WHERE state NOT IN ('finished', 'revoked')", (), [(0,)]
    )
    assert stuck == [(0,)]
    total = d.query("SELECT count(*) FROM call")[0][0]
    assert total < 300  # the stream stopped sending when its reader went away


def test_halt_policies(deployment: Deployment, network: dict[str, str]) -> None:
    d, n = deployment, network
    d.start_worker(n["processor"], concurrency=1)
    records = "printf '1\\nx\\n3\\ny\\n5\\n6\\n'"
    done = _bash(d, f"{records} | $FLOW task run --stream -s {n['add_two']} two:=1")
    assert done.returncode == 1
    assert done.stdout.split() == ["2", "4", "6", "7"]
    assert _summary(done.stderr) == (6, 4, 2)

    done = _bash(d, f"{records} | $FLOW task run --stream -j 1 --halt now,fail=1 "
                    f"-s {n['add_two']} two:=1")  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.split() == ["2"]
    assert "halted" in done.stderr

    done = _bash(d, f"{records} | $FLOW task run --stream -j 1 --halt soon,fail=2 "
                    f"-s {n['add_two']} two:=1")  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.split() == ["2", "4"]
    assert _summary(done.stderr) == (4, 2, 2)

    bad = _bash(d, f"seq 3 | $FLOW task run --stream --halt sometimes -s {n['add_two']}")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
