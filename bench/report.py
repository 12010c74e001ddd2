"""docs/benchmarks.md from a run's results: derived ratios, then one section per scenario.

A section is a function of the results (see SECTIONS) that returns its Markdown lines, or
none when the run did not measure it; adding a measurement means adding one such function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import (
    calls_report,
    config_report,
    goals_report,
    lag_report,
    large_report,
    method,
    multihost_report,
    nested_report,
    publish,
    scale_report,
)
from bench.markdown import errors, median_of, seconds, table, times, title
from bench.stats import ratio

REPRODUCE = """\
```
make bench            # = kuryr stack up && .venv/bin/python -m bench
.venv/bin/python -m bench --help   # fewer runs, a subset of drivers (--only), other sizes
.venv/bin/python -m bench.multihost   # the "Several hosts" phase alone (only its section)
.venv/bin/python -m bench.nested      # the "Nested mode" phase alone (only its section)
.venv/bin/python -m bench.large       # 500 containers on one host (only its section)
```
The run installs kuryr-libnetwork 18.0.0 from PyPI into /var/lib/kuryr-bench/kuryrlib-venv
(once), starts it on 127.0.0.1:23750 (driver `kuryrlib`, spec file
/usr/lib/docker/plugins/kuryrlib/kuryrlib.spec), removes everything it created (Docker names
start with `bench-`) and stops it at the end."""


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios of median start latency against the bridge and kuryr-libnetwork, and each
    scale step's growth (see bench.scale_report)."""
    starts = results.get("start_latency", {})
    bridge = median_of(starts.get("bridge", {}).get("summary"))
    reference = median_of(starts.get("kuryrlib", {}).get("summary"))
    ratios = {
        key: {
            "vs_bridge": ratio(median_of(row.get("summary")), bridge),
            "vs_kuryrlib": ratio(median_of(row.get("summary")), reference),
        }
        for key, row in starts.items()
    }
    return {"start_ratios": ratios, "scale": scale_report.derive(results.get("scale", {}))}


def _start_section(results: dict[str, Any]) -> list[str]:
    derived = derive(results)
    rows = []
    for key, row in results.get("start_latency", {}).items():
        summary = row["summary"] or {}
        ratios = derived["start_ratios"][key]
        rows.append(
            [
                title(key),
                seconds(summary.get("median")),
                seconds(summary.get("p90")),
                seconds(summary.get("min")),
                seconds(summary.get("max")),
                str(summary.get("count", 0)),
                errors(row),
                times(ratios["vs_bridge"]),
                times(ratios["vs_kuryrlib"]),
            ]
        )
    header = [
        "network",
        "median s",
        "p90 s",
        "min s",
        "max s",
        "runs",
        "errors",
        "vs bridge",
        "vs kuryr-libnetwork",
    ]
    return ["## Container start: `docker run --rm kuryr/busybox true`", "", *table(header, rows)]


def _network_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, row in results.get("network_lifecycle", {}).items():
        create, remove = row["create"], row["rm"]
        rows.append(
            [
                title(key),
                seconds(median_of(create["summary"])),
                seconds((create["summary"] or {}).get("p90")),
                seconds(median_of(remove["summary"])),
                seconds((remove["summary"] or {}).get("p90")),
                f"{errors(create)} / {errors(remove)}",
            ]
        )
    header = [
        "network",
        "create median s",
        "create p90 s",
        "rm median s",
        "rm p90 s",
        "errors (create / rm)",
    ]
    return ["## `docker network create` / `docker network rm`", "", *table(header, rows)]


def _parallel_section(results: dict[str, Any]) -> list[str]:
    parallel = results.get("parallel", {})
    bridge = parallel.get("bridge", {}).get("wall_s")
    rows = [
        [
            title(key),
            str(row["count"]),
            seconds(row["wall_s"], 2),
            ", ".join(seconds(w, 2) for w in row.get("walls_s", [])),
            times(ratio(row["wall_s"], bridge)),
            seconds(median_of(row["each"]), 2),
            errors(row),
            seconds(row["rm_wall_s"], 2),
        ]
        for key, row in parallel.items()
    ]
    header = [
        "network",
        "containers",
        "wall s (median)",
        "each burst s",
        "vs bridge",
        "median each s",
        "errors",
        "rm -f all at once, wall s",
    ]
    return [
        "## Containers started at once (`docker run -d` in parallel)",
        "",
        *table(header, rows),
    ]


def _rss_section(results: dict[str, Any]) -> list[str]:
    rows = [
        [name, "n/a" if kib is None else f"{kib / 1024:.1f}"]
        for name, kib in results.get("peak_rss_kib", {}).items()
    ]
    return [
        "## Peak RSS of each daemon (VmHWM, after the scale phase)",
        "",
        *table(["daemon", "MiB"], rows),
    ]


def _setup_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Networks and what failed", ""]
    for key, row in results.get("drivers", {}).items():
        command = " ".join(["docker", *row["create"]]) if row["create"] else "docker run --net=none"
        status = f"could not be created: `{row['error']}`" if row["error"] else "created"
        ping = results.get("connectivity", {}).get(key)
        if ping is not None:
            status += "; ping between two containers " + (
                "ok" if ping["ok"] else f"FAILED: `{ping.get('error')}`"
            )
        rm_error = results.get("rm_errors", {}).get(key)
        if rm_error:
            status += f"; `docker network rm` after the scale phase failed: `{rm_error}`"
        lines.append(f"- {row['title']}: `{command}`: {status}")
    return [*lines, ""]


Section = Callable[[dict[str, Any]], list[str]]


def _reproduce_section(_results: dict[str, Any]) -> list[str]:
    return ["## How to reproduce", "", REPRODUCE, ""]


SECTIONS: list[Section] = [
    goals_report.section,
    config_report.section,
    _setup_section,
    _start_section,
    publish.section,
    _network_section,
    _parallel_section,
    scale_report.section,
    calls_report.section,
    lag_report.section,
    _rss_section,
    large_report.section,
    nested_report.section,
    multihost_report.section,
    method.section,
    _reproduce_section,
]


def render(results: dict[str, Any]) -> str:
    m, v = results["machine"], results["versions"]
    head = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); every figure below comes from the run",
        f"of {results['date']} (UTC), which took {results.get('duration_s', 'n/a')} s. "
        "All figures are also in [benchmarks.json](benchmarks.json).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"kernel {m['kernel']}.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in sorted(v.items())) + ".",
        "",
    ]
    pids = results.get("kuryr_daemon_pids_seen", [])
    if len(pids) > 1:
        head += [
            f"**Disturbed run:** the Kuryr daemon was restarted during the run (PIDs {pids}),",
            "by another user of the shared stack; Kuryr rows with errors or n/a reflect that.",
            "",
        ]
    body = [line for section in SECTIONS for line in section(results)]
    return "\n".join([*head, *body])
