"""The scale section: how a network's start latency grows with the containers it holds.

Growth is each step's median over the same driver's first step, settled and right after
the fill. A driver is compared with the bridge (dockerd's own growth) only at a step where
both held the same number of containers, from first steps of equal size: a driver the fill
budget stopped short is shown, never compared."""

from __future__ import annotations

from typing import Any

from bench.markdown import median_of, seconds, table, times, title
from bench.stats import ratio

BASELINE = "bridge"
KINDS = ("settled", "after_fill")


def _medians(step: dict[str, Any]) -> dict[str, float | None]:
    return {
        "settled": median_of(step["start"]["summary"]),
        "after_fill": median_of((step.get("start_after_fill") or {}).get("summary")),
    }


def _growth(steps: list[dict[str, Any]]) -> dict[int, dict[str, float | None]]:
    """Per endpoint count reached, each kind's median over the first step's."""
    measured = [s for s in steps if "start" in s]
    if not measured:
        return {}
    first = _medians(measured[0])
    return {
        int(s["endpoints"]): {k: ratio(_medians(s)[k], first[k]) for k in KINDS} for s in measured
    }


def derive(scale: dict[str, Any]) -> dict[str, Any]:
    """Per driver and measured step: endpoints, first step's endpoints, growth of each kind
    and, at a count the bridge reached too from the same first count, growth beyond it."""
    firsts = {
        key: next((int(s["endpoints"]) for s in row["steps"] if "start" in s), None)
        for key, row in scale.items()
    }
    growth = {key: _growth(row["steps"]) for key, row in scale.items()}
    baseline = growth.get(BASELINE, {})
    derived: dict[str, Any] = {}
    for key, by_count in growth.items():
        comparable = firsts.get(BASELINE) is not None and firsts[BASELINE] == firsts[key]
        derived[key] = [
            {
                "endpoints": count,
                "first_endpoints": firsts[key],
                "growth": grown,
                "beyond_bridge": {
                    k: ratio(grown[k], baseline[count][k])
                    if comparable and count in baseline
                    else None
                    for k in KINDS
                },
            }
            for count, grown in by_count.items()
        ]
    return derived


def _headline(key: str, row: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    last = steps[-1]
    target = max(int(s["target"]) for s in row["steps"] if "start" in s)
    short = (
        f" (stopped short of {target}: not compared with the bridge)"
        if last["endpoints"] < target
        else ""
    )
    parts = []
    for kind, words in (("settled", "settled"), ("after_fill", "right after the fill")):
        text = f"{words} {times(last['growth'][kind])}"
        if key != BASELINE and last["beyond_bridge"][kind] is not None:
            text += f" ({times(last['beyond_bridge'][kind])} the bridge's growth)"
        parts.append(text)
    return (
        f"- {title(key)}, {last['endpoints']} vs {last['first_endpoints']} running "
        f"containers{short}: " + "; ".join(parts)
    )


def _fill_errors(step: dict[str, Any]) -> str:
    text = str(step["fill_errors"])
    if step["fill_error_examples"]:
        text += ": " + "; ".join(f"`{e}`" for e in step["fill_error_examples"])
    if "limited" in step:
        text += f" ({step['limited']})"
    return text


def section(results: dict[str, Any]) -> list[str]:
    scale = results.get("scale", {})
    if not scale:
        return []
    derived = derive(scale)
    headlines = [
        _headline(key, scale[key], steps) for key, steps in derived.items() if len(steps) > 1
    ]
    rows = []
    for key, row in scale.items():
        by_count = {d["endpoints"]: d for d in derived[key]}
        for step in row["steps"]:
            if "start" not in step:
                skipped = f"skipped: {step['skipped']}"
                rows.append([title(key), f"not reached ({step['target']})", *[""] * 10, skipped])
                continue
            mine = by_count[int(step["endpoints"])]
            settled = step["start"]["summary"] or {}
            after = (step.get("start_after_fill") or {}).get("summary") or {}
            rows.append(
                [
                    title(key),
                    f"{step['endpoints']} of {step['target']}",
                    seconds(settled.get("median")),
                    seconds(settled.get("p90")),
                    times(mine["growth"]["settled"]),
                    times(mine["beyond_bridge"]["settled"]),
                    seconds(after.get("median")),
                    seconds(after.get("p90")),
                    times(mine["growth"]["after_fill"]),
                    times(mine["beyond_bridge"]["after_fill"]),
                    seconds(step.get("settle_s"), 1),
                    seconds(step["fill_s"], 1),
                    _fill_errors(step),
                ]
            )
    header = [
        "network",
        "running containers",
        "settled: median s",
        "settled: p90 s",
        "settled: vs first step",
        "settled: beyond the bridge's growth",
        "right after fill: median s",
        "right after fill: p90 s",
        "right after fill: vs first step",
        "right after fill: beyond the bridge's growth",
        "idle after s",
        "fill time s",
        "fill errors",
    ]
    return [
        "## Start latency on a network already holding N running containers",
        "",
        "Median start latency at the largest step over the first step (*settled*: once the",
        "machine was idle again; *right after the fill*: at once), and over the bridge's own",
        "growth at the same counts:",
        "",
        *headlines,
        "",
        *table(header, rows),
    ]
