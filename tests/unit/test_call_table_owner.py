"""One owner of the ``call`` table: no module but ``shellflow.model.call_writes`` writes it.

Writers in three styles (a raw INSERT in the client, the ORM in the engine, driver-level
upserts in the record store) each had their own columns, conflict rules and time format; a
new writer elsewhere would start that again. SQL that only reads ``call`` may live anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shellflow"
OWNER = PACKAGE / "model" / "call_writes.py"
# SQL that writes call (or the event rows written with it), and the ORM's write constructs.
WRITE = re.compile(
    r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(call|event)\b"
    r"|\b(insert|update|delete)\(\s*(Call|Event)\b"
    r"|\b(Call|Event)\s*\(\s*\w+\s*=",  # an ORM object made to be added
    re.IGNORECASE,
)


def writes_of_call(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == OWNER or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WRITE.search(line):
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_only_call_writes_writes_the_call_table() -> None:
    assert writes_of_call(PACKAGE) == []


def test_the_scan_sees_each_style_of_write(tmp_path: Path) -> None:
    fake = tmp_path / "shellflow"
    fake.mkdir()
    (fake / "w.py").write_text(
        'sql = "INSERT INTO call (id) VALUES (?)"\n'
        "session.execute(update(Call).where(Call.id == x))\n"
        'conn.execute(f"UPDATE call SET state={mark}")\n'
        "session.add(Event(name='revoked'))\n"
        'rows = conn.query("SELECT id FROM call WHERE state = ?")\n'
    )
    assert [line.split(":")[1] for line in writes_of_call(fake)] == ["1", "2", "3", "4"]
