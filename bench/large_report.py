"""The "500 containers" section of docs/benchmarks.md (bench.large's run, which make bench
carries over): growth of the start latency, and the host's memory at the top."""

from __future__ import annotations

from typing import Any

from bench import scale_report
from bench.markdown import seconds, table, times, title

HEADING = "## Many containers on one host (`python -m bench.large`)"
# Issue 18's goals for this run.
GROWTH_GOAL = 1.3
RSS_GOAL_MIB = 150.0
MIB = 1024.0


def _mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / MIB:.0f}"


def top_growth(large: dict[str, Any], key: str) -> tuple[int, float | None]:
    """The containers the driver's last step held and its settled growth over the first."""
    steps = scale_report.derive(large.get("scale", {})).get(key) or []
    if not steps:
        return 0, None
    last = steps[-1]
    return int(last["endpoints"]), last["growth"]["settled"]


def _memory_rows(top: dict[str, Any]) -> list[list[str]]:
    roles = top.get("roles", {})
    return [
        [
            role,
            str(roles[role]["processes"]),
            _mib(roles[role]["rss_kib"]),
            _mib(roles[role]["pss_kib"]),
        ]
        for role in ("kuryr", "dockerd", "containerd", "shim", "container")
        if role in roles
    ]


def goals(large: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """Issue 18's two goals for this run: (goal, figure, met; None when not measured)."""
    target = int(large["settings"]["containers"])
    reached, growth = top_growth(large, "kuryr")
    top = large["scale"].get("kuryr", {}).get("at_top", {})
    peak = top.get("kuryr_peak_rss_kib")
    return [
        (
            f"{target} vs {large['settings']['first']} running, settled ≤ {GROWTH_GOAL}x"
            " (Kuryr IPAM)",
            f"{reached} of {target}: {times(growth)}",
            reached >= target and growth is not None and growth <= GROWTH_GOAL,
        ),
        (
            f"daemon peak RSS at {target} ≤ {RSS_GOAL_MIB:.0f} MiB",
            f"{_mib(peak)} MiB",
            None if peak is None else peak / MIB <= RSS_GOAL_MIB,
        ),
    ]


def _goal_lines(large: dict[str, Any]) -> list[str]:
    verdicts = {True: "met", False: "not met", None: "not measured"}
    return [f"- {goal}: {figure}: {verdicts[met]}" for goal, figure, met in goals(large)]


def section(results: dict[str, Any]) -> list[str]:
    large = results.get("large")
    if not large or "scale" not in large:
        return []
    settings = large["settings"]
    target = int(settings["containers"])
    derived = scale_report.derive(large["scale"])
    rows = []
    for key, row in large["scale"].items():
        for step, mine in zip(
            (s for s in row["steps"] if "start" in s), derived.get(key, []), strict=False
        ):
            rows.append(
                [
                    title(key),
                    f"{step['endpoints']} of {step['target']}",
                    seconds(step["start"]["summary"]["median"]),
                    times(mine["growth"]["settled"]),
                    times(mine["beyond_bridge"]["settled"]),
                    times(mine["growth"]["after_fill"]),
                    seconds(step["fill_s"], 1),
                    str(step["fill_errors"]),
                ]
            )
    header = [
        "network",
        "running containers",
        "settled: median s",
        "settled: vs first step",
        "settled: beyond the bridge's growth",
        "right after fill: vs first step",
        "fill s",
        "fill errors",
    ]
    lines = [
        HEADING,
        "",
        f"Run of {large['date']} (UTC), {large.get('duration_s', 'n/a')} s: `docker run --rm`"
        f" ({settings['probes']} probes) on a /22 network holding {settings['first']}, then"
        f" {target} running containers, filled {settings['fill_width']} at a time.",
        "",
        *_goal_lines(large),
        "",
        *table(header, rows),
    ]
    for key, row in large["scale"].items():
        top = row.get("at_top")
        if top:
            lines += [
                f"Memory of the host's processes with {title(key)} at the top (MiB):",
                "",
                *table(["role", "processes", "RSS", "PSS"], _memory_rows(top)),
            ]
    return lines
