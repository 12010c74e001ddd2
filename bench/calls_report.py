"""The Neutron calls section: requests per operation, pool hits and pool misses apart."""

from __future__ import annotations

from typing import Any

from bench.markdown import seconds, table, title

# The pool-miss operations (a start whose address no pool port holds, and its stop).
MISSES = ("start_pool_miss", "stop_pool_miss")
# Table order: a network's life; operations a later run adds go last, by name.
ORDER = ("network_create", "start", "stop", "run_rm", "network_rm", *MISSES)
HEADER = [
    "network",
    "operation",
    "runs ok",
    "sync (median)",
    "async (median)",
    "total (median)",
    "total min-max",
    "periodic pass, apart (sum)",
]


def _row(key: str, op: str, data: dict[str, Any]) -> list[str]:
    med = data["median"]
    good = [r["total"] for r in data["runs"] if r["ok"]]
    return [
        title(key),
        op,
        f"{len(good)} of {len(data['runs'])}",
        seconds(med and med["sync"], 1),
        seconds(med and med["async"], 1),
        seconds(med and med["total"], 1),
        f"{min(good)}-{max(good)}" if good else "n/a",
        _periodic(data["runs"]),
    ]


def _periodic(runs: list[dict[str, Any]]) -> str:
    """The periodic pass's requests that fell in the runs' windows (a run counted before
    they were told apart has them in its totals)."""
    if not runs or any("periodic" not in r for r in runs):
        return "in the totals"
    return str(sum(r["periodic"] for r in runs))


def typical(data: dict[str, Any]) -> dict[str, Any] | None:
    """The successful run whose total is closest to the median total (the first of ties)."""
    med = data["median"]
    good = [r for r in data["runs"] if r["ok"]]
    if med is None or not good:
        return None
    return min(good, key=lambda r: abs(r["total"] - med["total"]))


def _kinds(key: str, data: dict[str, Any] | None, what: str) -> list[str]:
    run = typical(data) if data else None
    if run is None:
        return []
    sync = ", ".join(f"{k} x{n}" for k, n in run["sync_kinds"].items())
    background = ", ".join(f"{k} x{n}" for k, n in run["async_kinds"].items())
    return [
        f"- {title(key)}, {what} (a run of median total): sync [{sync or 'none'}]; "
        f"after the answer [{background or 'none'}]"
    ]


def section(results: dict[str, Any]) -> list[str]:
    counted = results.get("neutron_calls", {})
    if not counted:
        return []
    hits: list[list[str]] = []
    misses: list[list[str]] = []
    kinds: list[str] = []
    for key, ops in counted.items():
        if "error" in ops:
            hits.append([title(key), f"not counted: {ops['error']}", *[""] * 6])
            continue
        for op in sorted(ops, key=lambda op: (ORDER.index(op) if op in ORDER else len(ORDER), op)):
            (misses if op in MISSES else hits).append(_row(key, op, ops[op]))
        kinds += _kinds(key, ops.get("start"), "one start")
        kinds += _kinds(key, ops.get("start_pool_miss"), "one pool miss")
    miss_part = table(HEADER, misses) if misses else ["This run did not count pool misses.", ""]
    return [
        "## Neutron API requests per operation",
        "",
        *table(HEADER, hits),
        "### Pool misses: a start asking for an address no pool port holds",
        "",
        *miss_part,
        *kinds,
        "",
    ]
