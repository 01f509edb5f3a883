"""A shell pipeline of socket commands is one flow run; separate pipelines are not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _flow_executable
from tests.engine.conftest import Deployment

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


def _bash(d: Deployment, script: str) -> subprocess.CompletedProcess[str]:
    flow = " ".join(_flow_executable())
    env = {**os.environ, **d.env, "FLOW": flow}
    env.pop("SHELLFLOW_FLOW", None)
    return subprocess.run(
        ["bash", "-c", "set -o pipefail; " + script], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )  # fmt: skip


def _calls(d: Deployment, count: int = 0) -> list[tuple[str, str, str | None, str]]:
    """The calls recorded so far, once there are ``count`` of them (or after 30 s)."""
    sql = "SELECT id, tracking, parent, name FROM call ORDER BY started"
    return [(str(r[0]), str(r[1]), r[2], str(r[3])) for r in d.wait_rows(sql, (), count)]


def test_pipe_chain_is_one_flow_with_parents(live: tuple[Deployment, dict[str, str]]) -> None:
    d, n = live
    script = (
        f'echo "HI THERE!" | $FLOW task run -s {n["do_something"]}'
        f' | echo "$(cat -) add some text" | $FLOW task run -s {n["do_this"]}'
    )
    done = _bash(d, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Do this: TEXT:HI THERE! add some text\n"
    (first, flow_a, parent_a, name_a), (second, flow_b, parent_b, name_b) = _calls(d, 2)
    assert (name_a, name_b) == (n["do_something"], n["do_this"])
    assert flow_a == flow_b
    assert parent_a is None and parent_b == first
    graph = d.ok("ls", "call", "--id", second, "--graph").stdout
    assert first in graph and second in graph


def test_tee_fan_out_is_one_flow(live: tuple[Deployment, dict[str, str]]) -> None:
    d, n = live
    out = Path(d.env["SHELLFLOW_HOME"])
    script = (
        f'echo "HI THERE!" | tee >($FLOW task run -s {n["do_something"]} > {out}/a)'
        f" >($FLOW task run -s {n['do_this']} > {out}/b) > /dev/null; wait; sleep 0.2"
    )
    assert _bash(d, script).returncode == 0
    expect = [("finished",), ("finished",)]
    d.wait_for("SELECT state FROM call", (), expect)
    flows = {flow for _, flow, _, _ in _calls(d)}
    assert len(_calls(d)) == 2 and len(flows) == 1


def test_separate_pipelines_are_separate_flows(live: tuple[Deployment, dict[str, str]]) -> None:
    d, n = live
    one = f"echo a | $FLOW task run -s {n['do_something']} | $FLOW task run -s {n['do_this']}"
    assert _bash(d, f"{one}; {one}").returncode == 0
    calls = _calls(d, 4)
    assert len(calls) == 4
    assert calls[0][1] == calls[1][1] != calls[2][1] == calls[3][1]
    # An explicit flow wins over the pipes, for every command given it.
    shared = f"echo a | $FLOW task run -s {n['do_something']} --flow joined"
    assert _bash(d, f"{shared}; {shared}").returncode == 0
    assert [c[1] for c in _calls(d, 6)[4:]] == ["joined", "joined"]
