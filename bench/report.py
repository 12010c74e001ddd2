"""docs/benchmarks.md from a run's results: derived ratios, then one table per scenario."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench.drivers import ALL
from bench.stats import ratio

TITLES = {d.key: d.title for d in ALL}
METHOD = """\
- One Docker daemon, one Neutron (ML2/OVN, noauth, one API worker), one OVS/OVN: the local
  stack of `kuryr stack up`. It is shared: other engineers' tests may have loaded Neutron
  during the run, which shows as spread between runs, never as a missing row.
- Every network is created with an explicit `--subnet` and `--gateway` (kuryr-libnetwork
  requires them); each driver has its own range (10.241-244.x.0/23), so none overlap.
- Start latency: the wall time of the `docker` CLI process, as a user waits for it.
  2 warm-up rounds, then rounds of one `docker run --rm` per network in a fixed order
  (A B C D E, A B C D E, ...). p90 interpolates linearly between the closest ranks.
- Containers at once: `docker run -d ... sleep` processes all started at the same moment;
  wall time from the first start to the last return, then all removed at once. 3 bursts per
  network, interleaved across networks, each once the CPUs were 80 % idle over one second
  (so no burst pays for the background work another left); the median burst is compared.
- Scale: from an idle machine, long-running `sleep` containers started 8 at a time until the
  network holds N, then 10 `docker run --rm` probes right away, then (once the CPUs were
  80 % idle over one second, at most 120 s: the work a fill leaves behind, such as Kuryr's
  pool refills and bookkeeping, is done) 10 more. The settled probes are the "start"
  figures and the ratio; the right-after-fill ones are shown beside them. A driver stops
  growing its network once filling would exceed the fill time budget (120 s per driver, so
  that the whole run stays near 15 min); the table then says how many it reached.
- Neutron requests: counted by a small proxy (bench/proxy.py, 127.0.0.1:19696 for
  kuryr-libnetwork, :19697 for Kuryr) that forwards to Neutron and logs each request. For
  this phase only, each daemon is restarted with its `[neutron] endpoint` on the proxy (the
  timing phases talk to Neutron directly), and Kuryr's is restored afterwards. *sync*: the
  request reached Neutron while the docker command was running; *async*: after it
  returned, until the daemon had made no request for 2 s. `start` = `docker run -d ...
  sleep`, `stop` = `docker rm -f`, `run_rm` = `docker run --rm ... true` (start and stop).
- Peak RSS: VmHWM of each daemon process after the scale phase (for Kuryr, since its last
  start, which the shared stack may have made more recent than the run's start).
- kuryr-libnetwork 18.0.0 runs from PyPI in its own venv with `[neutron] auth_type = none`,
  its binding scripts (`bindir` = the venv's libexec/kuryr: veth + the `ovs` script, which
  puts the host end on br-int with `external_ids:iface-id`), and its own default
  subnetpools `kuryrlib`/`kuryrlib6`, so it never touches Kuryr's `kuryr`/`kuryr6`."""

REPRODUCE = """\
```
make bench            # = kuryr stack up && .venv/bin/python -m bench
.venv/bin/python -m bench --help   # fewer runs, a subset of drivers (--only), other sizes
```
The run installs kuryr-libnetwork 18.0.0 from PyPI into /var/lib/kuryr-bench/kuryrlib-venv
(once), starts it on 127.0.0.1:23750 (driver `kuryrlib`, spec file
/usr/lib/docker/plugins/kuryrlib/kuryrlib.spec), removes everything it created (Docker names
start with `bench-`) and stops it at the end."""


def _median(summary: dict[str, Any] | None) -> float | None:
    return None if summary is None else float(summary["median"])


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios of median start latency against the bridge and kuryr-libnetwork, and each
    scale step against the first (does the start cost grow with the network's size?)."""
    starts = results.get("start_latency", {})
    bridge = _median(starts.get("bridge", {}).get("summary"))
    reference = _median(starts.get("kuryrlib", {}).get("summary"))
    ratios = {
        key: {
            "vs_bridge": ratio(_median(row.get("summary")), bridge),
            "vs_kuryrlib": ratio(_median(row.get("summary")), reference),
        }
        for key, row in starts.items()
    }
    growth: dict[str, list[float | None]] = {}
    for key, row in results.get("scale", {}).items():
        medians = [
            _median(step["start"]["summary"]) if "start" in step else None for step in row["steps"]
        ]
        growth[key] = [ratio(m, medians[0]) for m in medians] if medians else []
    # dockerd itself starts containers more slowly as it holds more: the bridge shows how much.
    bridge_growth = growth.get("bridge", [])
    beyond = {
        key: [
            ratio(g, bridge_growth[i]) if i < len(bridge_growth) else None
            for i, g in enumerate(steps)
        ]
        for key, steps in growth.items()
    }
    return {"start_ratios": ratios, "scale_growth": growth, "scale_growth_vs_bridge": beyond}


def _s(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} x"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _errors(row: dict[str, Any]) -> str:
    if not row.get("errors"):
        return "0"
    return f"{row['errors']}: " + "; ".join(f"`{e}`" for e in row.get("error_examples", []))


def _start_section(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    rows = []
    for key, row in results.get("start_latency", {}).items():
        summary = row["summary"] or {}
        ratios = derived["start_ratios"][key]
        rows.append(
            [
                TITLES.get(key, key),
                _s(summary.get("median")),
                _s(summary.get("p90")),
                _s(summary.get("min")),
                _s(summary.get("max")),
                str(summary.get("count", 0)),
                _errors(row),
                _x(ratios["vs_bridge"]),
                _x(ratios["vs_kuryrlib"]),
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
    return ["## Container start: `docker run --rm kuryr/busybox true`", "", *_table(header, rows)]


def _network_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, row in results.get("network_lifecycle", {}).items():
        create, remove = row["create"], row["rm"]
        rows.append(
            [
                TITLES.get(key, key),
                _s(_median(create["summary"])),
                _s((create["summary"] or {}).get("p90")),
                _s(_median(remove["summary"])),
                _s((remove["summary"] or {}).get("p90")),
                f"{_errors(create)} / {_errors(remove)}",
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
    return ["## `docker network create` / `docker network rm`", "", *_table(header, rows)]


def _parallel_section(results: dict[str, Any]) -> list[str]:
    parallel = results.get("parallel", {})
    bridge = parallel.get("bridge", {}).get("wall_s")
    rows = [
        [
            TITLES.get(key, key),
            str(row["count"]),
            _s(row["wall_s"], 2),
            ", ".join(_s(w, 2) for w in row.get("walls_s", [])),
            _x(ratio(row["wall_s"], bridge)),
            _s(_median(row["each"]), 2),
            _errors(row),
            _s(row["rm_wall_s"], 2),
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
        *_table(header, rows),
    ]


def _scale_section(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    rows = []
    for key, row in results.get("scale", {}).items():
        beyond = derived.get("scale_growth_vs_bridge", {}).get(key) or [None] * len(row["steps"])
        for step, growth, extra in zip(
            row["steps"], derived["scale_growth"][key], beyond, strict=True
        ):
            if "start" not in step:
                rows.append(
                    [
                        TITLES.get(key, key),
                        f"not reached ({step['target']})",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        f"skipped: {step['skipped']}",
                    ]
                )
                continue
            start = step["start"]
            fill_errors = str(step["fill_errors"])
            if step["fill_error_examples"]:
                fill_errors += ": " + "; ".join(f"`{e}`" for e in step["fill_error_examples"])
            if "limited" in step:
                fill_errors += f" ({step['limited']})"
            after_fill = (step.get("start_after_fill") or {}).get("summary")
            rows.append(
                [
                    TITLES.get(key, key),
                    f"{step['endpoints']} of {step['target']}",
                    _s(_median(start["summary"])),
                    _s((start["summary"] or {}).get("p90")),
                    _x(growth),
                    _x(extra),
                    _s(_median(after_fill)),
                    _s((after_fill or {}).get("p90")),
                    _s(step.get("settle_s"), 1),
                    _s(step["fill_s"], 1),
                    fill_errors,
                ]
            )
    header = [
        "network",
        "running containers",
        "start median s",
        "start p90 s",
        "vs first step",
        "growth beyond the bridge's",
        "right after fill: median s",
        "right after fill: p90 s",
        "idle after s",
        "fill time s",
        "fill errors",
    ]
    return [
        "## Start latency on a network already holding N running containers",
        "",
        *_table(header, rows),
    ]


def _calls_section(results: dict[str, Any]) -> list[str]:
    rows = []
    kinds: list[str] = []
    for key, ops in results.get("neutron_calls", {}).items():
        if "error" in ops:
            rows.append([TITLES.get(key, key), f"not counted: {ops['error']}", "", "", ""])
            continue
        for op, data in ops.items():
            med = data["median"]
            rows.append(
                [
                    TITLES.get(key, key),
                    op,
                    _s(med and med["sync"], 1),
                    _s(med and med["async"], 1),
                    ", ".join(str(r["total"]) for r in data["runs"]),
                ]
            )
        first_start = next((r for r in ops["start"]["runs"] if r["ok"]), None)
        if first_start:
            sync = ", ".join(f"{k} x{n}" for k, n in first_start["sync_kinds"].items())
            background = ", ".join(f"{k} x{n}" for k, n in first_start["async_kinds"].items())
            kinds.append(
                f"- {TITLES.get(key, key)}, one start: sync [{sync or 'none'}]; "
                f"after the answer [{background or 'none'}]"
            )
    header = ["network", "operation", "sync (median)", "async (median)", "total per run"]
    return ["## Neutron API requests per operation", "", *_table(header, rows), *kinds, ""]


def _rss_section(results: dict[str, Any]) -> list[str]:
    rows = [
        [name, "n/a" if kib is None else f"{kib / 1024:.1f}"]
        for name, kib in results.get("peak_rss_kib", {}).items()
    ]
    return [
        "## Peak RSS of each daemon (VmHWM, after the scale phase)",
        "",
        *_table(["daemon", "MiB"], rows),
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


def render(results: dict[str, Any]) -> str:
    derived = results.get("derived") or derive(results)
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
    body = (
        _setup_section(results)
        + _start_section(results, derived)
        + _network_section(results)
        + _parallel_section(results)
        + _scale_section(results, derived)
        + _calls_section(results)
        + _rss_section(results)
    )
    tail = ["## How it is measured", "", METHOD, "", "## How to reproduce", "", REPRODUCE, ""]
    return "\n".join([*head, *body, *tail])
