"""The section stating the Kuryr daemon configuration the run measured."""

from __future__ import annotations

from typing import Any

from bench.markdown import table

POOL_KEYS = (
    ("min", "free pool ports kept at least, per network (an idle pool's floor)"),
    ("max", "free pool ports kept at most, per network"),
    ("initial", "free pool ports a new network's pool aims at"),
    ("window", "seconds over which ports taken are counted (the pool grows to that many)"),
    ("idle_after", "seconds without a start before a pool shrinks to min (0: never)"),
    ("batch", "ports a refill creates at once"),
    ("bookkeeping", "when device_id, name and tags reach Neutron"),
    ("bookkeeping_delay", "seconds deferred bookkeeping waits"),
    ("background_pause", "seconds without Docker requests before background work"),
    ("background_longest", "seconds background work waits for such a pause at most"),
)


def section(results: dict[str, Any]) -> list[str]:
    head = ["## The Kuryr daemon measured", ""]
    measured = results.get("kuryr_config")
    if not measured:
        return [*head, "This run did not record the daemon's configuration.", ""]
    pool = measured["pool"]
    rows = [[f"[pool] {k}", str(pool[k]), what] for k, what in POOL_KEYS if k in pool]
    rows += [
        [f"[reconcile] {k}", str(v), ""] for k, v in sorted(measured.get("reconcile", {}).items())
    ]
    rows.append(["request_timeout", str(measured.get("request_timeout", "n/a")), ""])
    return [
        *head,
        f"Read from `{measured['config_file']}` at the start of the run, defaults included",
        "(the counting phase changes only `[neutron] endpoint`).",
        "",
        *table(["setting", "value", "meaning"], rows),
    ]
