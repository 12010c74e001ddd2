"""The benchmark report's sections from hand-made results: scale comparisons at equal
counts, pool misses apart, the daemon's configuration and the method from the parameters."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench import calls_report, config_report, lag_report, method, publish, scale_report
from bench.lag import lag_of
from bench.params import DEFAULTS, Parameters, of, parse_args


def summary(med: float) -> dict[str, Any]:
    return {"summary": {"median": med, "p90": med, "min": med, "max": med, "count": 1}}


def step(endpoints: int, target: int, settled: float, after_fill: float) -> dict[str, Any]:
    return {
        "endpoints": endpoints,
        "target": target,
        "start": summary(settled),
        "start_after_fill": summary(after_fill),
        "settle_s": 1.0,
        "fill_s": 2.0,
        "fill_errors": 0,
        "fill_error_examples": [],
    }


SCALE = {
    "bridge": {"steps": [step(10, 10, 0.4, 0.4), step(200, 200, 0.44, 0.48)]},
    "kuryr": {"steps": [step(10, 10, 0.3, 0.3), step(200, 200, 0.36, 0.45)]},
    "kuryrlib": {
        "steps": [
            step(10, 10, 2.0, 2.0),
            {**step(42, 200, 2.2, 2.4), "limited": "fill time budget reached"},
        ]
    },
}


def test_growth_settled_and_after_fill_beyond_the_bridge_at_equal_counts() -> None:
    derived = scale_report.derive(SCALE)
    last = derived["kuryr"][-1]
    assert last["endpoints"] == 200 and last["first_endpoints"] == 10
    assert last["growth"] == {"settled": pytest.approx(1.2), "after_fill": pytest.approx(1.5)}
    assert last["beyond_bridge"] == {
        "settled": pytest.approx(1.2 / 1.1),
        "after_fill": pytest.approx(1.5 / 1.2),
    }


def test_a_driver_stopped_short_is_not_compared_with_the_bridge() -> None:
    last = scale_report.derive(SCALE)["kuryrlib"][-1]
    assert last["endpoints"] == 42
    assert last["growth"]["settled"] == pytest.approx(1.1)
    assert last["beyond_bridge"] == {"settled": None, "after_fill": None}


def test_first_steps_of_other_sizes_are_not_compared_either() -> None:
    scale = {**SCALE, "kuryr": {"steps": [step(12, 10, 0.3, 0.3), step(200, 200, 0.36, 0.45)]}}
    assert scale_report.derive(scale)["kuryr"][-1]["beyond_bridge"]["settled"] is None


def test_scale_section_headlines_both_ratios() -> None:
    lines = scale_report.section({"scale": SCALE})
    assert (
        "- Kuryr, Kuryr IPAM, 200 vs 10 running containers: settled 1.20 x (1.09 x the "
        "bridge's growth); right after the fill 1.50 x (1.25 x the bridge's growth)"
    ) in lines
    assert (
        "- kuryr-libnetwork 18.0.0, 42 vs 10 running containers (stopped short of 200: not "
        "compared with the bridge): settled 1.10 x; right after the fill 1.20 x"
    ) in lines
    rows = [line for line in lines if line.startswith("| ")]
    assert len({row.count("|") for row in rows}) == 1


def counted(*totals: int, ok: bool = True) -> dict[str, Any]:
    runs = [
        {"ok": ok, "sync": t, "async": 0, "total": t, "sync_kinds": {"POST /v2.0/ports": t}}
        | {"async_kinds": {}, "periodic": 1}
        for t in totals
    ]
    good = sorted(totals)
    med = float(good[len(good) // 2]) if ok else None
    medians = None if med is None else {"sync": med, "async": 0.0, "total": med}
    return {"runs": runs, "median": medians}


def test_pool_misses_have_their_own_table() -> None:
    calls = {
        "kuryr": {
            "start_pool_miss": counted(3, 3, 4),
            "start": counted(0, 0, 2),
            "network_create": counted(9),
        }
    }
    lines = calls_report.section({"neutron_calls": calls})
    miss_title = lines.index("### Pool misses: a start asking for an address no pool port holds")
    hit_rows = [line for line in lines[:miss_title] if line.startswith("| Kuryr")]
    miss_rows = [line for line in lines[miss_title:] if line.startswith("| Kuryr")]
    assert [row.split(" | ")[1] for row in hit_rows] == ["network_create", "start"]
    assert miss_rows == [
        "| Kuryr, Kuryr IPAM | start_pool_miss | 3 of 3 | 3.0 | 0.0 | 3.0 | 3-4 | 3 |"
    ]


def test_a_run_counted_before_the_periodic_pass_was_apart_says_so() -> None:
    old = counted(2, 2)
    for run in old["runs"]:
        del run["periodic"]
    [row] = [
        line
        for line in calls_report.section({"neutron_calls": {"kuryr": {"start": old}}})
        if line.startswith("| Kuryr")
    ]
    assert row.endswith("| in the totals |")


def test_typical_run_is_the_one_closest_to_the_median() -> None:
    data = counted(25, 2, 2, 3, 2)
    assert calls_report.typical(data) == data["runs"][1]
    assert calls_report.typical(counted(5, ok=False)) is None


def test_config_section_states_pool_and_bookkeeping() -> None:
    measured = {
        "config_file": "/x/kuryr.conf",
        "request_timeout": 20.0,
        "pool": {"min": 20, "max": 40, "batch": 4, "bookkeeping": "deferred"}
        | {"bookkeeping_delay": 1.0},
        "reconcile": {"interval": 30.0, "grace": 30.0},
    }
    lines = config_report.section({"kuryr_config": measured})
    for row in ("| [pool] min | 20 |", "| [pool] bookkeeping | deferred |"):
        assert any(line.startswith(row) for line in lines)
    assert any(line.startswith("| [pool] bookkeeping_delay | 1.0 |") for line in lines)
    assert "This run did not record the daemon's configuration." in config_report.section({})


def test_method_text_comes_from_the_run_parameters() -> None:
    p = Parameters(runs=7, warmup=1, scale=(5, 50), scale_probes=4, count_reps=12)
    lines = method.section({"parameters": p.as_dict()})
    text = "\n".join(lines)
    assert "1 warm-up rounds, then 7 rounds" in text
    assert "(N = 5, 50)" in text and "4 `docker run --rm`" in text
    assert "counted 12 times" in text
    assert "did not record its parameters" not in text
    assert "did not record its parameters" in "\n".join(method.section({}))


def test_parameters_round_trip_through_the_results() -> None:
    p = of(parse_args(["--runs", "3", "--scale", "10,20,40", "--count-reps", "11"]))
    assert p.runs == 3 and p.scale == (10, 20, 40) and p.count_reps == 11
    assert Parameters.from_dict(p.as_dict()) == p
    assert Parameters.from_dict({"runs": 4, "unknown": 1}) == Parameters(runs=4)
    assert DEFAULTS.count_reps >= 10


@pytest.mark.parametrize("sizes", ["200,10", "10,10", "0,5", "x", ""])
def test_scale_sizes_must_be_positive_and_increasing(sizes: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--scale", sizes])
    assert isinstance(parse_args([]), argparse.Namespace)


def test_lag_is_from_return_to_first_sight_and_unseen_ports_are_missing() -> None:
    returned = {"ep1": 100.0, "ep2": 100.5, "ep3": 101.0, "ep4": 102.0}
    seen = {"ep1": 101.25, "ep2": 100.75, "ep4": 101.5, "other": 99.0}
    result = lag_of(returned, seen, errors=1)
    assert result["samples"] == [pytest.approx(1.25), pytest.approx(0.25), 0.0]
    assert result["before_return"] == 1
    assert result["missing"] == 1 and result["errors"] == 1
    assert result["summary"]["p99"] == pytest.approx(1.23)
    assert lag_of({}, seen, errors=0)["summary"] is None


def test_lag_section_has_a_row_per_mode_and_case() -> None:
    case = lag_of({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 2.0}, errors=0)
    measured = {
        "deferred": {"single": case, "burst": case},
        "immediate": {"error": "the Kuryr daemon was restarted by someone else"},
    }
    lines = lag_report.section({"bookkeeping_lag": measured})
    assert "| deferred | one at a time | 2 | 1.500 | 1.990 | 2.000 | 0 | 0 | 0 |" in lines
    assert "| deferred | all at once | 2 | 1.500 | 1.990 | 2.000 | 0 | 0 | 0 |" in lines
    assert any(line.startswith("| immediate | not measured: the Kuryr daemon") for line in lines)
    assert lag_report.section({}) == []


def test_publish_section_states_the_extra_latency_of_p() -> None:
    def case(plain: float, published: float) -> dict[str, object]:
        return {
            "plain": {"summary": {"median": plain, "p90": plain}, "errors": 0},
            "publish": {"summary": {"median": published, "p90": published}, "errors": 0},
        }

    results = {"publish": {"first": case(0.4, 1.1), "reused": case(0.4, 0.6)}}
    lines = publish.section(results)
    assert lines[0] == "## `docker run -p`: the cost of publishing"
    assert any(line.startswith("| first publisher") and "| 0.700 |" in line for line in lines)
    assert any(line.startswith("| another container") and "| 0.200 |" in line for line in lines)
    assert publish.section({}) == []
