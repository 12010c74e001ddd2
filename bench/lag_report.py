"""The bookkeeping lag section: p50/p99 from `docker run` returning to the port's device_id
in Neutron, one container at a time and in a burst, per bookkeeping mode."""

from __future__ import annotations

from typing import Any

from bench.markdown import seconds, table

CASES = (("single", "one at a time"), ("burst", "all at once"))


def section(results: dict[str, Any]) -> list[str]:
    measured = results.get("bookkeeping_lag")
    if not measured:
        return []
    head = ["## Neutron bookkeeping lag: `docker run` returned, device_id not yet in Neutron", ""]
    if "error" in measured:
        return [*head, f"Not measured: {measured['error']}", ""]
    rows = []
    for mode, cases in measured.items():
        if "error" in cases:
            rows.append([mode, f"not measured: {cases['error']}", *[""] * 7])
            continue
        for case, words in CASES:
            data = cases[case]
            s = data["summary"] or {}
            rows.append(
                [
                    mode,
                    words,
                    str(len(data["samples"])),
                    seconds(s.get("median")),
                    seconds(s.get("p99")),
                    seconds(s.get("max")),
                    str(data["before_return"]),
                    str(data["missing"]),
                    str(data["errors"]),
                ]
            )
    header = [
        "[pool] bookkeeping",
        "containers started",
        "samples",
        "p50 s",
        "p99 s",
        "max s",
        "in Neutron before docker returned (lag 0)",
        "never seen",
        "start errors",
    ]
    return [*head, *table(header, rows)]
