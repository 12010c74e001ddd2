"""Issue 18's goals, line by line: each target, this run's figure and whether it is met.

Every line is computed from the run's results (bench.large's 500-container run is its own,
carried over with its date); a goal the run did not measure says so and is not met."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench import large_report, scale_report
from bench.markdown import median_of, table, title
from bench.stats import ratio

KURYRS = ("kuryr", "kuryr-dipam")
HEADING = "## Issue 18's goals in this run"
Line = tuple[str, str, bool | None]


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _all(values: Sequence[bool | None]) -> bool | None:
    """Met for every driver; None when no driver was measured."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return all(known) and len(known) == len(values)


def _network(results: dict[str, Any]) -> list[Line]:
    rows = results.get("network_lifecycle", {})
    ref = rows.get("kuryrlib", {})
    lines: list[Line] = []
    for op, limit, goal in (
        ("create", 0.5, "`docker network create` ≤ 0.5x kuryr-libnetwork"),
        ("rm", 1.0, "`docker network rm` no slower than kuryr-libnetwork"),
    ):
        reference = median_of(ref.get(op, {}).get("summary"))
        ratios = [
            ratio(median_of(rows.get(k, {}).get(op, {}).get("summary")), reference) for k in KURYRS
        ]
        figure = " / ".join(_x(r) for r in ratios)
        lines.append((goal, figure, _all([None if r is None else r <= limit for r in ratios])))
    return lines


def _starts(results: dict[str, Any]) -> list[Line]:
    ratios = results.get("derived", {}).get("start_ratios", {})
    one = [ratios.get(k, {}).get("vs_bridge") for k in KURYRS]
    parallel = results.get("parallel", {})
    bridge = parallel.get("bridge", {}).get("wall_s")
    bursts = [ratio(parallel.get(k, {}).get("wall_s"), bridge) for k in KURYRS]
    firsts = [(parallel.get(k, {}).get("walls_s") or [None])[0] for k in KURYRS]
    first_text = " / ".join("n/a" if f is None else f"{f:.1f} s" for f in firsts)
    return [
        (
            "`docker run --rm` at or below the bridge",
            " / ".join(_x(r) for r in one),
            _all([None if r is None else r <= 1.0 for r in one]),
        ),
        (
            "20 at once ≤ 1.3x the bridge (median of the bursts)",
            " / ".join(_x(r) for r in bursts) + f" (first bursts {first_text})",
            _all([None if r is None else r <= 1.3 for r in bursts]),
        ),
    ]


def _requests(results: dict[str, Any]) -> list[Line]:
    counted = results.get("neutron_calls", {})
    totals: list[float | None] = []
    syncs: list[bool | None] = []
    with_sync: list[str] = []
    apart = True
    for key in KURYRS:
        ops = counted.get(key, {})
        start, stop = (ops.get(op, {}).get("median") for op in ("start", "stop"))
        totals.append(None if not start or not stop else start["total"] + stop["total"])
        runs = [r for op in ("start", "run_rm") for r in ops.get(op, {}).get("runs", [])]
        done = [r for r in runs if r["ok"]]
        syncs.append(None if not runs else all(r["sync"] == 0 for r in done))
        waited = sum(1 for r in done if r["sync"])
        with_sync.append(f"{waited} of {len(done)}" if runs else "n/a")
        apart = apart and all("periodic" in r for r in runs)
    note = "" if apart else " (a run of before it was counted apart: the pass in the totals)"
    return [
        (
            "Neutron requests per start + stop ≤ 4 (medians, pool hit; periodic pass apart)",
            " / ".join("n/a" if t is None else f"{t:g}" for t in totals) + note,
            _all([None if t is None else t <= 4 for t in totals]),
        ),
        (
            "no synchronous Neutron request on a start with a pool hit",
            " / ".join(with_sync) + " starts had one",
            _all(syncs),
        ),
    ]


# Growth of the start latency, the most against the fewest running containers.
SCALE_GOALS = (("after_fill", 1.25, "right after the fill"), ("settled", 1.15, "settled"))


def _scale(results: dict[str, Any]) -> list[Line]:
    scale = results.get("scale", {})
    derived = scale_report.derive(scale)
    lines: list[Line] = []
    for kind, limit, words in SCALE_GOALS:
        figures: list[str] = []
        met: list[bool | None] = []
        for key in KURYRS:
            steps = derived.get(key) or []
            targets = [int(s["target"]) for s in scale.get(key, {}).get("steps", [])]
            if not steps:
                figures.append("n/a")
                met.append(None)
                continue
            last = steps[-1]
            growth = last["growth"][kind]
            top = max(targets)
            short = "" if last["endpoints"] >= top else f" ({last['endpoints']} of {top})"
            figures.append(_x(growth) + short)
            met.append(growth is not None and growth <= limit and not short)
        goal = f"most vs fewest running containers, {words}, ≤ {limit}x"
        lines.append((goal, " / ".join(figures), _all(met)))
    return [*lines, _fill(scale)]


def _filled(scale: dict[str, Any], key: str) -> tuple[float, bool]:
    steps = [s for s in scale.get(key, {}).get("steps", []) if "start" in s]
    reached = bool(steps) and all(s["endpoints"] >= s["target"] for s in steps)
    return sum(float(s["fill_s"]) for s in steps), reached


def _fill(scale: dict[str, Any]) -> Line:
    bridge, _ = _filled(scale, "bridge")
    figures: list[str] = []
    met: list[bool | None] = []
    for key in KURYRS:
        took, reached = _filled(scale, key)
        r = ratio(took, bridge) if reached else None
        figures.append(f"{took:.0f} s vs {bridge:.0f} s: {_x(r)}" if reached else "not reached")
        met.append(r is not None and r <= 1.5)
    return ("filling the network 8 at a time ≤ 1.5x the bridge", " / ".join(figures), _all(met))


def _large(results: dict[str, Any]) -> list[Line]:
    large = results.get("large")
    if not large or "scale" not in large:
        return [("500 containers on one host (`python -m bench.large`)", "not run", None)]
    when = f" (run of {large['date']})"
    return [(goal, figure + when, met) for goal, figure, met in large_report.goals(large)]


def _memory(results: dict[str, Any]) -> Line:
    peaks = results.get("peak_rss_kib", {})
    shown = ", ".join(
        f"{name} {kib / 1024:.0f} MiB" for name, kib in peaks.items() if kib is not None
    )
    return ("memory of the daemons stated (peak RSS after the scale phase)", shown, bool(shown))


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "not met", None: "not measured"}[met]


def section(results: dict[str, Any]) -> list[str]:
    if "start_latency" not in results:
        return []
    lines = [
        *_network(results),
        *_starts(results),
        *_requests(results),
        *_scale(results),
        *_large(results),
        _memory(results),
    ]
    rows = [[goal, figure, _verdict(met)] for goal, figure, met in lines]
    return [
        HEADING,
        "",
        f"Figures are {title('kuryr')} / {title('kuryr-dipam')} where there are two.",
        "",
        *table(["goal", "figure", "met"], rows),
    ]
