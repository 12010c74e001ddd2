"""The "Several hosts" section of docs/benchmarks.md (bench.multihost's figures), and how a
run of that phase alone puts them into docs/benchmarks.json and docs/benchmarks.md without
touching the other sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.markdown import splice_section, table, times
from bench.mhmemory import DAEMONS
from bench.stats import ratio

HEADING = "## Several hosts"
COMMAND = ".venv/bin/python -m bench.multihost"
# Where the section goes in a page that has none yet: before the first of these.
BEFORE = ("## How it is measured", "## How to reproduce")
# p90 is shown from this many samples on; below, it says little.
P90_FROM = 10


def cell(summary: dict[str, Any] | None, digits: int = 3) -> str:
    """``median (p90 …, n=…)``; p90 only from P90_FROM samples."""
    if not summary:
        return "n/a"
    n = int(summary["count"])
    spread = f"p90 {summary['p90']:.{digits}f}, " if n >= P90_FROM else ""
    return f"{summary['median']:.{digits}f} ({spread}n={n})"


def median(entry: dict[str, Any] | None) -> float | None:
    summary = (entry or {}).get("summary")
    return None if not summary else float(summary["median"])


def names(mh: dict[str, Any]) -> dict[str, str]:
    """The hosts' names by their role in the results ("main", "remote")."""
    hosts = mh.get("hosts", {})
    return {"main": hosts.get("main", "the machine's host"), "remote": hosts.get("remote", "h2")}


def _intro(mh: dict[str, Any]) -> list[str]:
    main, remote = names(mh).values()
    cidr = mh.get("network", {}).get("cidr", "?")
    network = mh.get("network", {}).get("name", "mhbench-net")
    before, after = mh.get("load_before", ["?"])[0], mh.get("load_after", ["?"])[0]
    return [
        f"Run of {mh['date']} (UTC) at kuryr {mh.get('kuryr_commit', '?')}, which took"
        f" {mh.get('duration_s', '?')} s:",
        f"`{COMMAND}` (it rewrites only this section and the `multihost`",
        "key of benchmarks.json), or the last phase of `make bench`.",
        "",
        f"`{main}` is the machine's own host, `{remote}` a simulated host of `kuryr stack up",
        "--hosts 3`: its own network namespace, OVS (userspace datapath), ovn-controller,",
        "dockerd and Kuryr daemon, its chassis joined to the machine's by geneve over a veth.",
        f"One Neutron network spans both: `{main}` created the Docker network `{network}`",
        f"(`--subnet {cidr}`, Kuryr IPAM; Kuryr made the Neutron network) and `{remote}`",
        "adopted it (`-o neutron.net.uuid=… --ipam-opt neutron.subnet.name=…`).",
        "",
        f"**Machine load:** every host shares this machine's {mh.get('cores', '?')} cores with"
        " Neutron, OVN and PostgreSQL",
        f"(1-minute load average {before} before the phase, {after} after), and the stack is",
        "shared with other engineers' runs. The figures across hosts include userspace geneve",
        "on those same CPUs and no physical network: they compare the two paths on this",
        "machine, they do not predict real hosts.",
        "",
    ]


def _lifecycle_rows(steps: dict[str, Any]) -> list[list[str]]:
    up, down, restore = steps.get("up"), steps.get("down"), steps.get("restore")
    rows = []
    if up:
        added = up.get("hosts_added", 2)
        rows.append([f"`{up['command']}`", f"adds {added} hosts to the running stack", _s(up)])
    if down:
        each = f"; no command removes one host alone: about {down['seconds'] / 2:.1f} s a host"
        rows.append([f"`{down['command']}`", "removes both" + each, _s(down)])
    if restore:
        rows.append(
            [
                f"`{restore['command']}`",
                "puts the machine's daemon back on its single-host config (restart)",
                _s(restore),
            ]
        )
    return rows


def _s(step: dict[str, Any]) -> str:
    return f"{step['seconds']:.1f}" if step.get("ok") else f"failed: `{step.get('error', '?')}`"


def _lifecycle(mh: dict[str, Any]) -> list[str]:
    steps = mh.get("lifecycle", {})
    head = ["### Adding and removing the simulated hosts", ""]
    header = ["command", "what it does", "s (n=1)"]
    if "skipped" not in steps:
        return [*head, *table(header, _lifecycle_rows(steps))]
    lines = [*head, f"Not measured in this run: {steps['skipped']}.", ""]
    previous = steps.get("previous")
    if previous:
        lines += [f"From the run of {previous['date']} (UTC):", ""]
        lines += table(header, _lifecycle_rows(previous))
    return lines


def _traffic_rows(mh: dict[str, Any]) -> list[list[str]]:
    figures = [
        ("`docker run -d`, s", mh.get("start", {}), 3),
        ("`docker rm -f` of that container, s", mh.get("rm", {}), 3),
        ("first ping reply after `docker run -d` returned, s", mh.get("readiness", {}), 3),
    ]
    return [
        [
            what,
            cell(by_role.get("remote", {}).get("summary"), digits),
            cell(by_role.get("main", {}).get("summary"), digits),
            times(ratio(median(by_role.get("remote")), median(by_role.get("main")))),
        ]
        for what, by_role, digits in figures
    ]


def _problems(mh: dict[str, Any]) -> list[str]:
    host = names(mh)
    found = []
    for key in ("start", "rm", "readiness"):
        for role, entry in mh.get(key, {}).items():
            if entry.get("errors"):
                examples = "; ".join(f"`{e}`" for e in entry.get("error_examples", []))
                found.append(f"{key} on {host[role]}: {entry['errors']} failed ({examples})")
    for key, word in (
        ("rtt_ms", "lost"),
        ("tcp_connect_ms", "failed"),
        ("throughput_mb_s", "failed"),
    ):
        for role, entry in mh.get(key, {}).items():
            if entry.get(word):
                found.append(f"{key} on the route {ROUTES.get(role, role)}: {entry[word]} {word}")
    return found


def _traffic(mh: dict[str, Any]) -> list[str]:
    main, remote = names(mh).values()
    header = [
        "median (p90, n)",
        f"on `{remote}` / across hosts",
        f"on `{main}` / within it",
        f"{remote} ÷ {main}",
    ]
    lines = ["### Containers", "", *table(header, _traffic_rows(mh))]
    after = {role: entry.get("probe_after_s") for role, entry in mh.get("readiness", {}).items()}
    if after.get("remote"):
        lines += [
            "The readiness probe's first request left a median "
            f"{after['remote']['median']:.3f} s after `docker run` returned on `{remote}`",
            "(the time to read the new container's address): a reply that came with the first",
            "request means the container was reachable at least that early.",
            "",
        ]
    problems = _problems(mh)
    if problems:
        lines += ["Failures: " + "; ".join(problems) + ".", ""]
    return lines


# The routes traffic is measured on, as the report names them.
ROUTES = {
    "remote": "across hosts",
    "main": "same host, Kuryr",
    "bridge": "same host, Docker bridge",
}


def _route_rows(mh: dict[str, Any]) -> list[list[str]]:
    size = mh.get("parameters", {}).get("transfer_mib", "?")
    figures = [
        ("ping RTT, ms", mh.get("rtt_ms", {}), 3),
        ("TCP connect, ms", mh.get("tcp_connect_ms", {}), 3),
        (f"TCP throughput, MB/s ({size} MiB a transfer)", mh.get("throughput_mb_s", {}), 1),
    ]
    rows = []
    for what, by_route, digits in figures:
        found = {route: median(by_route.get(route)) for route in ROUTES}
        rows.append(
            [
                what,
                *(cell(by_route.get(route, {}).get("summary"), digits) for route in ROUTES),
                times(ratio(found["remote"], found["main"])),
                times(ratio(found["remote"], found["bridge"])),
                times(ratio(found["main"], found["bridge"])),
            ]
        )
    return rows


def _routes(mh: dict[str, Any]) -> list[str]:
    if not any(key in mh for key in ("rtt_ms", "tcp_connect_ms", "throughput_mb_s")):
        return []
    main, remote = names(mh).values()
    header = [
        "median (p90, n)",
        f"across hosts (`{main}` → `{remote}`), Kuryr",
        f"same host (`{main}`), Kuryr",
        f"same host (`{main}`), Docker bridge",
        "across ÷ same host",
        "across ÷ bridge",
        "same-host Kuryr ÷ bridge",
    ]
    return [
        "### Traffic across hosts, within one, and on Docker's bridge",
        "",
        *table(header, _route_rows(mh)),
        "For RTT and connect time a ratio above 1 is slower; for throughput, above 1 is faster.",
        "",
    ]


def _load(mh: dict[str, Any]) -> list[str]:
    load = mh.get("load")
    if not load:
        return []
    main, remote = names(mh).values()
    fill = load.get("fill", {})
    idle, loaded = load.get("idle"), load.get("loaded")
    held = fill.get("running", "?")
    rows = [
        [f"`{remote}` idle, before the fill", cell((idle or {}).get("summary"))],
        [
            f"`{remote}` while `{main}` holds {held} running containers",
            cell((loaded or {}).get("summary")),
        ],
        ["loaded ÷ idle", times(ratio(median(loaded), median(idle)))],
    ]
    fill_failed = f", {fill['errors']} failed" if fill.get("errors") else ""
    emptied = load.get("empty", {}).get("seconds", "?")
    return [
        f"### `docker run --rm` on `{remote}` while `{main}` holds {held} containers",
        "",
        *table(["`docker run --rm … true`, s", "median (p90, n)"], rows),
        f"The {fill.get('asked', '?')} containers (`sleep`) are on `{load.get('network', '?')}`,"
        f" the network `{remote}` runs its containers on too;",
        f"filling took {fill.get('seconds', '?')} s"
        f" ({mh.get('parameters', {}).get('fill_width', '?')} `docker run -d` at a time"
        f"{fill_failed}), then the machine was let settle"
        f" {load.get('settle_s', '?')} s; emptying took {emptied} s.",
        "",
    ]


OPS = {"start": "start (`docker run -d`)", "stop": "stop (`docker rm -f`)"}


def _count_cell(op: dict[str, Any] | None) -> str:
    med = (op or {}).get("median")
    if not med:
        return "n/a"
    runs = len(op.get("runs", [])) if op else 0
    return f"{med['total']:g} ({med['sync']:g} + {med['async']:g}, n={runs})"


def _total(op: dict[str, Any] | None) -> float | None:
    med = (op or {}).get("median")
    return None if not med else float(med["total"])


def _counts(mh: dict[str, Any]) -> list[str]:
    counted = mh.get("neutron_requests")
    if not counted:
        return []
    head = ["### Neutron requests per container start and stop, 1 host against 3", ""]
    if "skipped" in counted:
        return [*head, f"Not measured in this run: {counted['skipped']}.", ""]
    main = names(mh)["main"]
    hosts = counted.get("hosts", [])
    one, three = counted.get("one_host", {}), counted.get("three_hosts", {})
    rows = [
        [what, _count_cell(one.get(op)), _count_cell(three.get(op)),
         times(ratio(_total(three.get(op)), _total(one.get(op))))]
        for op, what in OPS.items()
    ]  # fmt: skip
    per_host = {op: (three.get(op, {}).get("median") or {}).get("by_host") for op in OPS}
    by_host = [
        # In the hosts' order: benchmarks.json keeps its keys sorted.
        f"{op}: " + ", ".join(f"`{h}` {found[h]:g}" for h in hosts if h in found)
        for op, found in per_host.items()
        if found
    ]
    lines = [
        *head,
        *table(
            [
                f"on `{main}`, all {len(hosts)} daemons' requests: median (sync + async, n)",
                f"network on `{main}` only",
                f"network adopted by {', '.join(f'`{h}`' for h in hosts if h != main)} too",
                "3 hosts ÷ 1",
            ],
            rows,
        ),
    ]
    if by_host:
        lines += ["Medians per daemon with 3 hosts: " + "; ".join(by_host) + ".", ""]
    notes = [*counted.get("restore_notes", [])]
    if counted.get("disturbed"):
        notes.append(
            "restarted by someone else during the count: " + ", ".join(counted["disturbed"])
        )
    if notes:
        lines += ["Problems: " + "; ".join(notes) + ".", ""]
    return lines


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _memory(mh: dict[str, Any]) -> list[str]:
    memory = mh.get("memory")
    if not memory:
        return []
    remote = names(mh)["remote"]
    roles = memory["roles"]
    rows = [
        [
            name,
            str(roles[name]["processes"]),
            _mib(roles[name]["pss_kib"]),
            _mib(roles[name]["rss_kib"]),
        ]
        for name in DAEMONS
        if name in roles
    ]
    daemons, every = memory["daemons"], memory["all"]
    rest = {k: every[k] - daemons[k] for k in every}
    rows += [
        ["**the five summed**", str(daemons["processes"]), f"**{_mib(daemons['pss_kib'])}**",
         _mib(daemons["rss_kib"])],
        ["the rest: containerd, Neutron relay, a running container's processes and shim",
         str(rest["processes"]), _mib(rest["pss_kib"]), _mib(rest["rss_kib"])],
        ["every process of the host", str(every["processes"]), _mib(every["pss_kib"]),
         _mib(every["rss_kib"])],
    ]  # fmt: skip
    missing = memory.get("missing") or []
    note = [f"Not found among its processes: {', '.join(missing)}.", ""] if missing else []
    return [
        f"### Memory of one simulated host (`{remote}`), at the end of the phase",
        "",
        *table(["process", "processes", "PSS MiB", "RSS MiB"], rows),
        *note,
    ]


def _pools(mh: dict[str, Any]) -> str:
    host = names(mh)
    return ", ".join(
        f"`{host[role]}` `[pool] min {d['pool']['min']} max {d['pool']['max']}"
        f" batch {d['pool']['batch']}`"
        for role, d in mh.get("daemons", {}).items()
    )


def _method(mh: dict[str, Any]) -> list[str]:
    p = mh.get("parameters", {})
    return [
        f"How (within a time budget of {p.get('budget_s', '?')} s: a loop it cut short shows"
        " a smaller n; p90 interpolates linearly between the closest ranks):",
        "",
        f"- `docker run -d … sleep`: once the machine was idle after the network was made"
        f" (waited {mh.get('settle_s', '?')} s),",
        f"  {p.get('warmup')} warm-up rounds, then {p.get('starts')} rounds of one start per"
        " host, the host that goes first",
        "  alternating; each container is removed (`docker rm -f`, also timed) before the next",
        "  start. Wall time of the docker CLI. The daemons as `kuryr stack` configures them:",
        f"  {_pools(mh) or 'n/a'}.",
        f"- Readiness: {p.get('ready')} rounds of one `docker run -d` per host, from its return",
        "  to the first echo reply from the new container's address to a probe container on",
        "  the machine's host, which pings every 10 ms (iputils `ping -D` run inside the",
        "  probe's network namespace, so each reply carries its arrival time).",
        f"- Ping: {p.get('pings')} echo requests {p.get('ping_interval_s')} s apart, after one"
        " unmeasured, from the",
        "  probe container to a server container on each host, and from one bridge container",
        f"  to the other. TCP: {p.get('connects')} connects to the",
        "  server's port 80 (busybox httpd), one after the other, each closed at once; a",
        "  connect returns when the SYN-ACK is in.",
        f"- Throughput: {p.get('transfers')} transfers of {p.get('transfer_mib')} MiB on each"
        " route after one unmeasured, the routes",
        "  taking turns: bench/tcpthroughput.py (the machine's Python, plain sockets) sends from",
        "  the client's network namespace to a sink in the server's (both through `nsenter`),",
        "  timed from the first byte sent until the sink answers that it read them all;",
        "  MB = 10^6 bytes. Across hosts and same host: the probe container and the server",
        "  containers above; bridge: two containers on a user-defined bridge network",
        "  (`docker network create mhbench-bridge-…`) of the machine's host, the server running",
        "  the same httpd, so its ping and connect figures are measured the same way.",
        f"- `docker run --rm` on h2: {p.get('load_warmup')} unmeasured then"
        f" {p.get('load_runs')} runs of `true`, idle; then the machine's",
        f"  host starts {p.get('load_containers')} `sleep` containers on the spanned network"
        f" ({p.get('fill_width')} at a time), the",
        "  machine is let settle (CPUs idle, at most 45 s), and the same runs are repeated;",
        "  then the containers are removed.",
        "- Neutron requests: every host's daemon is restarted with its Neutron endpoint on a",
        "  counting proxy of its own (bench.proxy; a simulated host's inside its network",
        "  namespace), and with periodic reconciliation off (`[reconcile] interval = 0`: its",
        "  queries come from every daemon whatever the containers do). Proxies rather than",
        "  the daemon's Prometheus counters: those are served only with `metrics_listen`, so",
        "  a restart was needed anyway, and the proxy also tells the requests a Docker request",
        "  waited for (sync: they carry its id, `X-OpenStack-Request-ID`) from background work",
        "  (async), counted until every daemon was quiet for 2 s.",
        f"  {p.get('count_reps')} containers started and removed on the machine's host, on a"
        " network that only it",
        "  has, then again once h2 and h3 adopted it; the daemons are then put back.",
        "- Memory: PSS (each shared page split among the processes mapping it, so the sum",
        "  counts shared libraries once) and RSS, from /proc/PID/smaps_rollup, of every",
        "  process `kuryr stack hosts --json` lists for the host.",
        "- Hosts: `kuryr stack up --hosts 3` and `down --hosts-only` are timed only when no",
        "  simulated host ran before the phase (it then adds them and removes them at the",
        "  end); hosts someone else brought up are used and left as they are.",
        "",
    ]


def section(results: dict[str, Any]) -> list[str]:
    mh = results.get("multihost")
    if not mh:
        return []
    lines = [HEADING, "", *_intro(mh)]
    if "error" in mh:
        return [*lines, f"Not measured: {mh['error']}", ""]
    return [
        *lines,
        *_lifecycle(mh),
        *_traffic(mh),
        *_routes(mh),
        *_load(mh),
        *_counts(mh),
        *_memory(mh),
        *_method(mh),
    ]


def splice(markdown: str, lines: list[str]) -> str:
    """``markdown`` with its "Several hosts" section replaced by ``lines``; a page without
    one gets it before its method section (or at its end)."""
    return splice_section(markdown, HEADING, lines, BEFORE)


def carry_over(measured: dict[str, Any] | None, previous: dict[str, Any] | None) -> None:
    """When this run did not time adding and removing hosts (they were up already), keep
    the last run's figures that did, with their date."""
    if not measured or not previous:
        return
    steps = measured.get("lifecycle", {})
    if "skipped" not in steps:
        return
    before = previous.get("lifecycle", {})
    if "up" in before:
        steps["previous"] = {"date": previous.get("date", "?"), **before}
    elif "previous" in before:
        steps["previous"] = before["previous"]


def previous_of(docs: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads((docs / "benchmarks.json").read_text())
    except (OSError, ValueError):
        return {}
    return loaded


def write(measured: dict[str, Any], docs: Path) -> None:
    """The phase's figures into docs/benchmarks.json (its ``multihost`` key) and the
    "Several hosts" section of docs/benchmarks.md; the rest of both stays as it was."""
    results = previous_of(docs)
    carry_over(measured, results.get("multihost"))
    results["multihost"] = measured
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "benchmarks.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    page = docs / "benchmarks.md"
    markdown = page.read_text() if page.exists() else "# Benchmarks\n"
    page.write_text(splice(markdown, section(results)))
