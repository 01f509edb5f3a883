"""The autoscaler's decision (``shellflow.engine.worker.autoscale.decide``) and the bounds'
check (``shellflow.model.scale``), as pure functions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shellflow.engine.worker.autoscale import GROW_AT, IDLE_AFTER, WAIT_AT, Backlog, decide
from shellflow.model.scale import bounds_problem

counts = st.integers(min_value=0, max_value=64)


@st.composite
def situations(draw: st.DrawFn) -> dict[str, object]:
    minimum = draw(st.integers(min_value=1, max_value=16))
    maximum = draw(st.integers(min_value=minimum, max_value=32))
    current = draw(st.integers(min_value=1, max_value=40))
    return {
        "current": current, "busy": draw(st.integers(min_value=0, max_value=current)),
        "waiting": draw(counts), "idle_for": draw(st.floats(0, 3 * IDLE_AFTER)),
        "waited": draw(st.floats(0, 3 * WAIT_AT)),
        "minimum": minimum, "maximum": maximum, "cpus": draw(st.integers(1, 64)),
    }  # fmt: skip


@given(situations())
def test_the_pool_stays_within_its_bounds_and_never_drops_a_running_call(s: dict) -> None:
    d = decide(**s)  # type: ignore[arg-type]
    ceiling = min(s["maximum"], s["cpus"])
    floor = min(s["minimum"], ceiling)
    assert d.desired >= s["busy"] or d.desired == s["current"]  # retires idle processes only
    assert d.desired <= max(ceiling, s["busy"])
    assert d.desired >= floor
    assert d.reason


@given(situations())
def test_it_grows_only_while_calls_wait_and_shrinks_only_when_idle(s: dict) -> None:
    d = decide(**s)  # type: ignore[arg-type]
    ceiling = min(s["maximum"], s["cpus"])
    floor = min(s["minimum"], ceiling)
    within = floor <= s["current"] <= ceiling
    if within and d.desired > s["current"]:  # by depth, or by wait time
        assert s["waiting"] >= GROW_AT or (s["waiting"] and s["waited"] >= WAIT_AT)
        assert d.desired <= s["busy"] + s["waiting"]
    if within and d.desired < s["current"]:
        assert s["waiting"] < GROW_AT and s["idle_for"] >= IDLE_AFTER


def test_a_backlog_grows_the_pool_to_its_ceiling() -> None:
    common = {"busy": 1, "idle_for": 0.0, "minimum": 1, "maximum": 3}
    assert decide(current=1, waiting=59, cpus=8, **common).desired == 3
    assert decide(current=1, waiting=59, cpus=2, **common).desired == 2  # the node's CPUs
    assert "node's CPUs" in decide(current=2, waiting=59, cpus=2, **common).reason
    assert decide(current=1, waiting=GROW_AT, cpus=8, **common).desired == 3


def test_a_call_waiting_long_enough_grows_the_pool_below_the_depth_threshold() -> None:
    common = {"current": 1, "busy": 1, "idle_for": 0.0, "minimum": 1, "maximum": 3, "cpus": 8}
    assert GROW_AT > 1
    assert decide(waiting=1, waited=WAIT_AT / 2, **common).desired == 1
    grown = decide(waiting=1, waited=WAIT_AT, **common)
    assert grown.desired == 2 and "waiting for" in grown.reason
    assert decide(waiting=0, waited=WAIT_AT, **common).desired == 1


def test_the_backlog_counts_from_the_first_check_that_saw_a_call_waiting() -> None:
    backlog = Backlog()
    assert backlog.seen(0, 100.0) == 0.0
    assert backlog.seen(3, 101.0) == 0.0
    assert backlog.seen(1, 104.5) == 3.5
    assert backlog.seen(0, 105.0) == 0.0  # drained: the next backlog counts anew
    assert backlog.seen(2, 106.0) == 0.0


def test_an_idle_pool_shrinks_to_its_floor_after_the_idle_period() -> None:
    common = {"current": 3, "busy": 0, "waiting": 0, "minimum": 1, "maximum": 3, "cpus": 8}
    assert decide(idle_for=IDLE_AFTER / 2, **common).desired == 3
    assert decide(idle_for=IDLE_AFTER, **common).desired == 1
    assert decide(idle_for=IDLE_AFTER, **(common | {"busy": 2})).desired == 2


def test_bounds_are_checked() -> None:
    assert bounds_problem(None, None, 1) is None
    assert bounds_problem(1, 3, 3) is None
    assert "both" in str(bounds_problem(1, None, 3))
    assert "over --max-workers" in str(bounds_problem(3, 2, 3))
    assert "raise -c" in str(bounds_problem(1, 4, 2))
