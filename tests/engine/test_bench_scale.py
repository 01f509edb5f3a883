"""``bench/scale.py`` still runs: a tiny run of it on the embedded deployment.

The bench is a measurement, so it exits 0 and prints ``not measured: ...`` when something
breaks; this test runs it with a few calls and checks that every row of its table is there
(rates are not checked: no timing threshold in a test), and that its arguments are parsed
as documented.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def test_a_tiny_run_prints_every_row() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--workers", "1,2", "--trivial", "30", "--cpu-calls", "6",
         "--cpu-ms", "1", "--rounds", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "not measured" not in out, out
    for socket in ("echo", "spin"):
        for n in (1, 2):
            assert re.search(rf"^{socket}\s+{n}\s+[\d.]+\s", out, re.MULTILINE), out
    assert "CPU per call" in out, out


def test_worker_counts_are_parsed() -> None:
    # In a process of its own: the bench's modules (``stream``, ``engine``) are top-level
    # names that must not enter the test process.
    script = (
        f"import sys; sys.path.insert(0, {str(BENCH.parent)!r}); import scale; "
        "print(scale.parse(['--workers', '4,1,2,2']).workers, scale.parse([]).deployment)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split("\n")[0] == "[1, 2, 4] embedded", done.stderr
    for wrong in ("0,2", "one", ""):
        done = subprocess.run([sys.executable, str(BENCH), "--workers", wrong],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 2, (wrong, done.stdout, done.stderr)
        assert "worker counts" in done.stderr or "not a list" in done.stderr, done.stderr
