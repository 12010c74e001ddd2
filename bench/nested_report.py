"""The "Nested mode" section of docs/benchmarks.md (bench.nested's figures), and how a run of
that phase alone puts them into docs/benchmarks.json and docs/benchmarks.md without touching
the other sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.markdown import seconds, splice_section, table, times

HEADING = "## Nested mode"
COMMAND = ".venv/bin/python -m bench.nested"
BEFORE = ("## Several hosts", "## How it is measured", "## How to reproduce")
# Issue 15: a nested `docker run --rm` at most this many times the bridge's in the same VM.
TARGET = 1.3
# How long the phase waits for an idle machine once a VM's networks are made.
SETTLE_LIMIT_S = 45.0
NETWORKS = (("bridge", "Docker bridge"), ("kuryr", "Kuryr (Kuryr IPAM)"))


def _intro(nested: dict[str, Any]) -> list[str]:
    vms = ", ".join(f"`{name}` ({mode})" for name, mode in nested.get("vms", {}).items())
    before, after = nested.get("load_before", ["?"])[0], nested.get("load_after", ["?"])[0]
    return [
        f"Run of {nested['date']} (UTC) at kuryr {nested.get('kuryr_commit', '?')}, which took"
        f" {nested.get('duration_s', '?')} s:",
        f"`{COMMAND}` (it rewrites only this section and the `nested` key of",
        "benchmarks.json), or a phase of `make bench`.",
        "",
        f"The simulated VMs of `kuryr stack up --vms 2`: {vms or 'none'}. Each has its own",
        "network namespace, dockerd and Kuryr daemon in nested mode; its NIC is the VM end of a",
        "veth on the machine's br-int for a Neutron trunk's parent port. In each VM, `docker run",
        "--rm kuryr/busybox true` against that VM's dockerd, on a Docker bridge network of the",
        "VM and on a Kuryr network of the VM (macvlan: the VMs' own Neutron network",
        "`kuryr-stack-vms`; vlan: a Neutron network the phase makes), interleaved, the first",
        "network of a round alternating. Target (issue 15): Kuryr's median at most"
        f" {TARGET} x the bridge's.",
        f"1-minute load average {before} before the phase, {after} after; the VMs share the",
        "machine's cores with Neutron, OVN and PostgreSQL.",
        "",
    ]


def _row(mode: str, key: str, label: str, entry: dict[str, Any]) -> list[str]:
    created = entry.get("create", {}).get(key, {})
    timed = entry.get("run_rm", {}).get(key, {})
    summary = timed.get("summary") or {}
    if created.get("error"):
        failed = f"network create failed: `{created['error']}`"
        return [mode, label, "n/a", "n/a", "n/a", "0", failed]
    examples = "; ".join(f"`{e}`" for e in timed.get("error_examples", []))
    errors = str(timed.get("errors", 0)) + (f": {examples}" if examples else "")
    return [
        mode,
        label,
        seconds(summary.get("median")),
        seconds(summary.get("p90")),
        seconds(summary.get("min")),
        str(summary.get("count", 0)),
        errors,
    ]


def _ratio_cell(entry: dict[str, Any]) -> str:
    r = entry.get("ratio") or {}
    if r.get("median") is None:
        return "n/a"
    verdict = "met" if r.get("met") else "NOT met"
    return f"{times(r['median'])} (p90 {times(r.get('p90'))}): target {verdict}"


def _count_cell(entry: dict[str, Any]) -> str:
    counted = entry.get("neutron_requests")
    if not counted:
        return "not counted"
    if counted.get("error"):
        return f"failed: `{counted['error']}`"
    median = counted.get("median")
    if not median:
        return "n/a"
    return (
        f"{median['sync']:g} sync, {median['async']:g} in the background"
        f" (median of {counted.get('reps', '?')})"
    )


def _table(nested: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    summary_rows: list[list[str]] = []
    for mode, entry in nested.get("modes", {}).items():
        if entry.get("error"):
            rows.append([mode, "", "n/a", "n/a", "n/a", "0", entry["error"]])
            continue
        rows += [_row(mode, key, label, entry) for key, label in NETWORKS]
        summary_rows.append(
            [f"{mode} (`{entry.get('vm', '?')}`)", _ratio_cell(entry), _count_cell(entry)]
        )
    kuryrlib = nested.get("kuryrlib", {}).get("error", "not measured")
    rows.append(["both", "kuryr-libnetwork (nested)", "n/a", "n/a", "n/a", "0", kuryrlib])
    header = ["mode", "network", "median s", "p90 s", "min s", "runs", "errors / why not"]
    ratio_header = ["mode (VM)", "Kuryr / bridge, median", "Neutron requests per `run --rm`"]
    return [
        "### `docker run --rm kuryr/busybox true` inside a VM",
        "",
        *table(header, rows),
        *table(ratio_header, summary_rows),
    ]


def _notes(nested: dict[str, Any]) -> list[str]:
    p = nested.get("parameters", {})
    lines = [
        f"- {p.get('warmup', '?')} warm-up rounds, then {p.get('runs', '?')} rounds of one run"
        " per network; the wall time of the `docker` CLI process against the VM's socket.",
        "- Neutron requests: the VM's daemon restarted with `[neutron] endpoint` on a counting"
        " proxy inside the VM (periodic reconciliation off), one unmeasured run, then"
        f" {p.get('count_reps', '?')} runs each counted from the command's start until the"
        " daemon was quiet for 2 s; *sync* are those a Docker request waited for (they carry"
        " its id, `X-OpenStack-Request-ID`), the others background work. The"
        " daemon is put back as the stack runs it afterwards.",
    ]
    waits = {m: e["settle_s"] for m, e in nested.get("modes", {}).items() if "settle_s" in e}
    if waits:
        busy = any(w >= SETTLE_LIMIT_S for w in waits.values())
        lines.append(
            "- Before the first run, the networks made, the phase waited for an idle machine"
            f" (the pools' fill done), at most {SETTLE_LIMIT_S:g} s: "
            + ", ".join(f"{mode} {w:g} s" for mode, w in waits.items())
            + (" (the limit: the machine was busy)." if busy else ".")
        )
    steps = nested.get("lifecycle", {})
    if "up" in steps:
        up, down = steps["up"], steps.get("down", {})
        lines.append(
            f"- The phase started the VMs (`kuryr stack up --vms 2`'s VM part, {up['seconds']} s)"
            f" and removed them at the end ({down.get('seconds', '?')} s)."
        )
    cleanup = nested.get("cleanup", {})
    if cleanup.get("notes"):
        lines.append("- Cleanup: " + "; ".join(cleanup["notes"]))
    return [*lines, ""]


def section(results: dict[str, Any]) -> list[str]:
    nested = results.get("nested")
    if not nested:
        return []
    lines = [HEADING, "", *_intro(nested)]
    if "error" in nested:
        return [*lines, f"Not measured: {nested['error']}", ""]
    return [*lines, *_table(nested), *_notes(nested)]


def write(measured: dict[str, Any], docs: Path) -> None:
    """The phase's figures into docs/benchmarks.json (its ``nested`` key) and the "Nested
    mode" section of docs/benchmarks.md; the rest of both stays as it was."""
    page_json = docs / "benchmarks.json"
    try:
        results: dict[str, Any] = json.loads(page_json.read_text())
    except (OSError, ValueError):
        results = {}
    results["nested"] = measured
    docs.mkdir(parents=True, exist_ok=True)
    page_json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    page = docs / "benchmarks.md"
    markdown = page.read_text() if page.exists() else "# Benchmarks\n"
    page.write_text(splice_section(markdown, HEADING, section(results), BEFORE))
