"""Issue 18's goals section: each line's verdict from a run's results."""

from __future__ import annotations

from typing import Any

from bench import goals_report


def summary(median: float) -> dict[str, Any]:
    return {"summary": {"median": median, "p90": median, "min": median, "max": median}}


def steps(*reached: tuple[int, int, float, float]) -> dict[str, Any]:
    """(target, reached, settled median, fill seconds) per step."""
    return {
        "steps": [
            {
                "target": target,
                "endpoints": got,
                "fill_s": fill,
                "start": summary(median),
                "start_after_fill": summary(median),
            }
            for target, got, median, fill in reached
        ]
    }


def counted(start: float, stop: float, sync: int = 0) -> dict[str, Any]:
    run = {"ok": True, "sync": sync, "total": start, "periodic": 3}
    return {
        "start": {"runs": [run], "median": {"total": start}},
        "stop": {"runs": [run | {"total": stop}], "median": {"total": stop}},
    }


def results(*, burst: float, fill: float, reached: int) -> dict[str, Any]:
    kuryr = {"create": summary(0.4), "rm": summary(0.1)}
    return {
        "start_latency": {},
        "derived": {"start_ratios": {k: {"vs_bridge": 0.95} for k in goals_report.KURYRS}},
        "network_lifecycle": {
            "kuryrlib": {"create": summary(1.6), "rm": summary(0.8)},
            "kuryr": kuryr,
            "kuryr-dipam": kuryr,
        },
        "parallel": {
            "bridge": {"wall_s": 4.0, "walls_s": [4.0]},
            "kuryr": {"wall_s": burst, "walls_s": [12.0, burst]},
            "kuryr-dipam": {"wall_s": 4.4, "walls_s": [4.4]},
        },
        "neutron_calls": {"kuryr": counted(2, 2), "kuryr-dipam": counted(2, 2)},
        "scale": {
            "bridge": steps((10, 10, 0.5, 2.0), (200, 200, 0.55, 50.0)),
            "kuryr": steps((10, 10, 0.5, 2.0), (200, 200, 0.55, fill)),
            "kuryr-dipam": steps((10, 10, 0.5, 2.0), (200, reached, 0.55, fill)),
        },
        "peak_rss_kib": {"kuryr": 120 * 1024},
    }


def verdicts(run: dict[str, Any]) -> dict[str, str]:
    rows = [
        line for line in goals_report.section(run) if line.startswith("| ") and "---" not in line
    ]
    return {row.split(" | ")[0][2:]: row.split(" | ")[-1][:-2] for row in rows[1:]}


def figures(run: dict[str, Any]) -> dict[str, str]:
    rows = [
        line for line in goals_report.section(run) if line.startswith("| ") and "---" not in line
    ]
    return {row.split(" | ")[0][2:]: row.split(" | ")[1] for row in rows[1:]}


def test_a_run_meeting_the_goals_says_met_line_by_line() -> None:
    got = verdicts(results(burst=5.0, fill=70.0, reached=200))
    assert got.pop("500 containers on one host (`python -m bench.large`)") == "not measured"
    assert set(got.values()) == {"met"}, got


def test_a_slow_burst_a_slow_fill_and_a_short_fill_are_not_met() -> None:
    got = verdicts(results(burst=5.6, fill=90.0, reached=165))
    assert got["20 at once ≤ 1.3x the bridge (median of the bursts)"] == "not met"
    assert got["filling the network 8 at a time ≤ 1.5x the bridge"] == "not met"
    assert got["most vs fewest running containers, settled, ≤ 1.15x"] == "not met"
    assert got["`docker network create` ≤ 0.5x kuryr-libnetwork"] == "met"


def test_a_start_with_a_synchronous_request_or_too_many_requests_is_not_met() -> None:
    run = results(burst=5.0, fill=70.0, reached=200)
    run["neutron_calls"]["kuryr"] = counted(3, 2, sync=1)
    got = verdicts(run)
    assert got["no synchronous Neutron request on a start with a pool hit"] == "not met"
    figure = figures(run)["no synchronous Neutron request on a start with a pool hit"]
    assert figure == "1 of 1 / 0 of 1 starts had one", figure
    assert (
        got["Neutron requests per start + stop ≤ 4 (medians, pool hit; periodic pass apart)"]
        == "not met"
    )


def test_the_500_container_run_is_judged_from_its_own_results() -> None:
    run = results(burst=5.0, fill=70.0, reached=200)
    run["large"] = {
        "date": "2026-12-07 21:20",
        "settings": {"containers": 500, "first": 10},
        "scale": {
            "bridge": steps((10, 10, 0.5, 2.0), (500, 500, 0.6, 130.0)),
            "kuryr": steps((10, 10, 0.5, 2.0), (500, 500, 0.7, 400.0))
            | {"at_top": {"kuryr_peak_rss_kib": 140 * 1024}},
        },
    }
    got = verdicts(run)
    assert got["500 vs 10 running, settled ≤ 1.3x (Kuryr IPAM)"] == "not met"  # 1.4x
    assert got["daemon peak RSS at 500 ≤ 150 MiB"] == "met"
