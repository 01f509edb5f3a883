"""The Network screen's series: throughput from the finished counter, depth as reported."""

from __future__ import annotations

from shellflow.engine.records.metrics import Row
from shellflow.tui.data.metrics import SAMPLES, SPAN, Trends, depth_text, rate_text


def row(finished: int, queued: int | None = 0, workers: int = 1) -> Row:
    return Row("p", "p.s", workers=workers, started=finished, finished=finished, queued=queued)


def test_the_first_sample_has_no_rate_then_the_counter_growth_is_the_rate() -> None:
    trends = Trends()
    trends.add([row(10, 3)], 100.0)
    trend = trends.get("p", "p.s")
    assert trend is not None and trend.rate is None and rate_text(trend) == "-"
    assert list(trend.queued) == [3.0] and depth_text(trend) == "3"
    trends.add([row(14, 5)], 101.0)
    assert trend.rate == 4.0 and rate_text(trend) == "4.0/s"
    assert list(trend.throughput) == [4.0] and list(trend.queued) == [3.0, 5.0]


def test_the_rate_spans_the_last_samples_so_uneven_reports_even_out() -> None:
    trends = Trends()
    counts = [0, 0, 20, 20, 40, 40, 60, 60, 80, 80, 100]  # 10/s reported every other second
    for second, finished in enumerate(counts):
        trends.add([row(finished)], float(second))
    trend = trends.get("p", "p.s")
    assert trend is not None and abs(trend.rate - (100 - 40) / SPAN) < 1e-9
    assert min(list(trend.throughput)[SPAN:]) >= 8.0


def test_series_are_bounded_and_a_counter_that_goes_back_starts_over() -> None:
    trends = Trends()
    for second in range(SAMPLES * 2):
        trends.add([row(second)], float(second))
    trend = trends.get("p", "p.s")
    assert trend is not None and len(trend.throughput) == SAMPLES == len(trend.queued)
    trends.add([row(0)], float(SAMPLES * 2))  # a worker restarted alone: no negative rate
    assert trend.rate == 1.0 and min(trend.throughput) >= 0


def test_an_unknown_depth_is_a_dash_and_no_point() -> None:
    trends = Trends()
    trends.add([row(1, None, workers=0)], 1.0)
    trend = trends.get("p", "p.s")
    assert trend is not None and depth_text(trend) == "-" and list(trend.queued) == []
    assert rate_text(None) == "-" and depth_text(None) == "-"
    trends.add([], 2.0)
    assert trends.samples == 1
