"""A processor's shares over several nodes (``shellflow.model.shares``): the CPUs they hold
sum to exactly what it asks, none beyond its node's free CPUs; the worker bounds apportioned
to them never sum beyond ``--max-workers``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shellflow.model.shares import apportion, split

frees = st.lists(st.integers(min_value=0, max_value=16), min_size=0, max_size=8)


@given(frees, st.integers(min_value=1, max_value=64), st.integers(min_value=1, max_value=10),
       st.booleans())  # fmt: skip
def test_shares_sum_to_the_ask_and_fit_their_nodes(
    free: list[int], cpus: int, most: int, pack: bool
) -> None:
    nodes = [(f"n{i}", room) for i, room in enumerate(free)]
    shares = split(nodes, cpus, most, pack=pack)
    room = dict(nodes)
    if shares is None:  # only when the largest `most` nodes cannot hold it
        assert sum(sorted(free, reverse=True)[:most]) < cpus
        return
    assert sum(c for _, c in shares) == cpus  # exactly the ask, never more (spec 1.10)
    assert all(1 <= c <= room[n] for n, c in shares)
    assert len({n for n, _ in shares}) == len(shares) <= most
    # As few nodes as can hold it: one fewer would not do.
    assert sum(sorted(free, reverse=True)[: len(shares) - 1]) < cpus


def test_a_node_that_fits_takes_it_whole() -> None:
    nodes = [("a", 2), ("b", 4), ("c", 3)]
    assert split(nodes, 3, 4) == [("b", 3)]  # BALANCED: the most free
    assert split(nodes, 3, 4, pack=True) == [("c", 3)]  # EFFICIENT: the fewest that fit


def test_too_large_for_one_node_it_is_spread() -> None:
    nodes = [("n1", 2), ("n2", 2)]
    assert split(nodes, 3, 3) == [("n1", 2), ("n2", 1)]
    assert split(nodes, 4, 3) == [("n1", 2), ("n2", 2)]
    assert split(nodes, 5, 3) is None  # never more than the free CPUs
    assert split(nodes, 3, 1) is None  # --max-workers 1: one share at most
    assert split([("a", 2), ("b", 1), ("c", 1)], 3, 3, pack=True) == [("a", 2), ("b", 1)]


@given(st.lists(st.integers(min_value=1, max_value=16), min_size=1, max_size=8),
       st.integers(min_value=0, max_value=200))  # fmt: skip
def test_apportioned_bounds_stay_within_the_total_and_each_share(
    weights: list[int], total: int
) -> None:
    parts = apportion(total, weights)
    assert len(parts) == len(weights)
    assert all(1 <= p <= w for p, w in zip(parts, weights, strict=True))
    if len(weights) <= total <= sum(weights):
        assert sum(parts) == total
    elif total > sum(weights):
        assert parts == weights
    else:
        assert sum(parts) == len(weights)


def test_apportion_in_proportion() -> None:
    assert apportion(3, [2, 1]) == [2, 1]
    assert apportion(2, [2, 1]) == [1, 1]
    assert apportion(4, [3, 3]) == [2, 2]
    assert apportion(5, [3, 3]) == [3, 2]  # ties to the first share
