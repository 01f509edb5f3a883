"""A stream whose result backend came back finds in the records the calls that ended while
it was away (a result that could not be stored is still in its call's record)."""

from __future__ import annotations

from datetime import UTC, datetime

from shellflow.config import load_settings
from shellflow.engine.calls.outcomes import recorded_ended
from shellflow.model.call_writes import Pending, insert_pending_many
from shellflow.model.listing import writer


def test_only_ended_calls_are_found_with_their_result_or_error(initialised_db: str) -> None:
    now = datetime.now(UTC)
    ids = [f"call-{i}" for i in range(5)]
    with writer(initialised_db) as conn, conn.transaction():
        insert_pending_many(conn, [Pending(i, "s.t", None, None, "flow-1", None, "[]", now)
                                   for i in ids])  # fmt: skip
    ends = [("finished", '{"a": [1, 2]}', None), ("failed", None, "ValueError: no"),
            ("dead", None, "moved to s.t.dead"), ("running", None, None)]  # fmt: skip
    with writer(initialised_db) as conn:
        for call_id, (state, result, error) in zip(ids, ends, strict=False):
            conn.execute("UPDATE call SET state = ?, result = ?, error = ? WHERE id = ?",
                         (state, result, error, call_id))  # fmt: skip
    found = recorded_ended(load_settings(), [*ids, "never-sent"])
    by_id = {o.call_id: (o.state, o.result, o.error) for o in found}
    assert by_id == {
        "call-0": ("finished", {"a": [1, 2]}, None),
        "call-1": ("failed", None, "ValueError: no"),
        "call-2": ("dead", None, "moved to s.t.dead"),
    }  # running (call-3), pending (call-4) and unknown ids are not ended
