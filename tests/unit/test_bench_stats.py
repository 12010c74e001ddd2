"""Statistics of the benchmark: percentiles, medians, ratios and the derived tables."""

from __future__ import annotations

import statistics

import pytest

from bench.report import derive
from bench.stats import Summary, median, p90, percentile, ratio


def test_median_of_odd_sample_is_middle_value() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0


def test_median_of_even_sample_is_mean_of_middle_values() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_matches_statistics_module() -> None:
    samples = [0.41, 0.39, 0.52, 0.47, 0.44, 0.61, 0.38, 0.40]
    assert median(samples) == pytest.approx(statistics.median(samples))


def test_p90_interpolates_between_closest_ranks() -> None:
    # Positions 0..10 hold 0..10: the 0.9 quantile sits exactly on rank 9.
    assert p90([float(v) for v in range(11)]) == pytest.approx(9.0)
    # Twenty values 1..20: position 0.9 * 19 = 17.1, between 18 and 19.
    assert p90([float(v) for v in range(1, 21)]) == pytest.approx(18.1)


def test_p90_matches_statistics_inclusive_quantiles() -> None:
    samples = [0.33, 0.35, 0.31, 0.9, 0.36, 0.34, 0.32, 0.37, 0.38, 0.30, 0.41, 0.29]
    expected = statistics.quantiles(samples, n=10, method="inclusive")[8]
    assert p90(samples) == pytest.approx(expected)


def test_percentile_bounds_are_min_and_max() -> None:
    samples = [3.0, 9.0, 1.0]
    assert percentile(samples, 0.0) == 1.0
    assert percentile(samples, 1.0) == 9.0


def test_single_sample_is_its_own_median_and_p90() -> None:
    assert median([0.7]) == 0.7
    assert p90([0.7]) == 0.7


def test_percentile_rejects_empty_sample_and_bad_fraction() -> None:
    with pytest.raises(ValueError):
        median([])
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_ratio_divides_and_handles_missing_values() -> None:
    assert ratio(0.5, 0.4) == pytest.approx(1.25)
    assert ratio(None, 0.4) is None
    assert ratio(0.5, None) is None
    assert ratio(0.5, 0.0) is None


def test_summary_of_samples() -> None:
    summary = Summary.of([0.2, 0.4, 0.3])
    assert summary.as_dict() == {
        "count": 3,
        "median": 0.3,
        "p90": pytest.approx(0.38),
        "min": 0.2,
        "max": 0.4,
    }


def _row(med: float) -> dict[str, object]:
    return {"summary": {"median": med, "p90": med, "min": med, "max": med, "count": 1}}


def test_derive_ratios_against_bridge_and_reference() -> None:
    results = {
        "start_latency": {"bridge": _row(0.4), "kuryr": _row(0.44), "kuryrlib": _row(2.2)},
        "scale": {
            "kuryr": {
                "steps": [
                    {"endpoints": 10, "target": 10, "start": _row(0.5)},
                    {"endpoints": 200, "target": 200, "start": _row(0.6)},
                ]
            },
        },
    }
    derived = derive(results)
    assert derived["start_ratios"]["kuryr"]["vs_bridge"] == pytest.approx(1.1)
    assert derived["start_ratios"]["kuryr"]["vs_kuryrlib"] == pytest.approx(0.2)
    assert derived["start_ratios"]["bridge"]["vs_bridge"] == pytest.approx(1.0)
    growth = [step["growth"]["settled"] for step in derived["scale"]["kuryr"]]
    assert growth == [pytest.approx(1.0), pytest.approx(1.2)]


def test_derive_without_reference_leaves_ratio_empty() -> None:
    results = {"start_latency": {"bridge": _row(0.4), "kuryr": {"summary": None}}}
    derived = derive(results)
    assert derived["start_ratios"]["kuryr"] == {"vs_bridge": None, "vs_kuryrlib": None}
