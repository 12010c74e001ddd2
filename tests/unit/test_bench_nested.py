"""The nested benchmark's pure parts: the VMs of ``kuryr stack hosts --json``, the Kuryr
network's arguments, the ratio against the bridge and its target, and the report section
put into a page without touching the other sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import nested, nested_report
from bench.params import parse_args

HOSTS = [
    {"name": "main", "kind": "host", "docker_host": "unix:///var/run/docker.sock", "main": True},
    {
        "name": "vm1",
        "kind": "vm",
        "docker_host": "unix:///var/lib/kuryr-stack/vms/vm1/run/docker.sock",
        "main": False,
        "mode": "macvlan",
        "port_id": "p1",
        "trunk_id": "t1",
        "pids": [11, 12],
    },
    {
        "name": "vm2",
        "kind": "vm",
        "docker_host": "unix:///var/lib/kuryr-stack/vms/vm2/run/docker.sock",
        "main": False,
        "mode": "vlan",
        "port_id": "p2",
        "trunk_id": "t2",
    },
]


def summary(median: float, p90: float) -> dict[str, Any]:
    return {"count": 20, "median": median, "p90": p90, "min": median / 2, "max": p90 * 2}


def mode_entry(vm: str, bridge: float, kuryr: float) -> dict[str, Any]:
    return {
        "vm": vm,
        "create": {"bridge": {"ok": True}, "kuryr": {"ok": True}},
        "run_rm": {
            "bridge": {"summary": summary(bridge, bridge * 1.1), "errors": 0},
            "kuryr": {"summary": summary(kuryr, kuryr * 1.2), "errors": 0},
        },
        "ratio": nested.ratios(summary(bridge, bridge * 1.1), summary(kuryr, kuryr * 1.2)),
    }


MEASURED: dict[str, Any] = {
    "date": "2026-12-07T05:30:00+00:00",
    "kuryr_commit": "abc1234",
    "duration_s": 120.0,
    "vms": {"vm1": "macvlan", "vm2": "vlan"},
    "parameters": {"runs": 20, "warmup": 2, "count_reps": 6},
    "load_before": [1.5],
    "load_after": [1.7],
    "kuryrlib": {"error": nested.NESTED_KURYRLIB},
    "modes": {
        "macvlan": {
            **mode_entry("vm1", 0.40, 0.48),
            "neutron_requests": {"reps": 6, "median": {"sync": 0, "async": 2, "total": 2}},
        },
        "vlan": {
            **mode_entry("vm2", 0.40, 0.60),
            "create": {"bridge": {"ok": True}, "kuryr": {"ok": True}},
        },
    },
    "lifecycle": {"up": {"seconds": 40.0, "broken": []}, "down": {"seconds": 9.0}},
    "cleanup": {"ok": True, "notes": []},
}

PAGE = """\
# Benchmarks

## Peak RSS of each daemon

x

## Several hosts

y

## How it is measured

z
"""


def test_only_the_vm_rows_with_their_mode_and_port() -> None:
    found = nested.vms_of(HOSTS)
    assert [(v.host.name, v.mode, v.port_id, v.trunk_id) for v in found] == [
        ("vm1", "macvlan", "p1", "t1"),
        ("vm2", "vlan", "p2", "t2"),
    ]
    assert found[0].host.docker_host.endswith("vm1/run/docker.sock")
    assert found[0].host.pids == (11, 12)


def test_the_kuryr_network_is_on_a_named_neutron_network_with_kuryr_ipam() -> None:
    args = nested.kuryr_args("macvlan", "10.99.0.0/24", "kuryr-stack-vms")
    assert args == (
        "-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", "10.99.0.0/24",
        "-o", "neutron.net.name=kuryr-stack-vms",
    )  # fmt: skip


def test_the_ratio_of_medians_against_the_target() -> None:
    met = nested.ratios(summary(0.4, 0.5), summary(0.5, 0.6))
    assert met["median"] == 0.5 / 0.4 and met["p90"] == 0.6 / 0.5
    assert met["met"] is True and met["target"] == 1.3
    assert nested.ratios(summary(0.4, 0.5), summary(0.6, 0.6))["met"] is False
    assert nested.ratios(None, summary(0.6, 0.6)) == {
        "median": None,
        "p90": None,
        "target": 1.3,
        "met": None,
    }


def test_the_section_has_both_modes_the_ratios_the_counts_and_kuryrlib() -> None:
    text = "\n".join(nested_report.section({"nested": MEASURED}))
    assert text.startswith("## Nested mode\n")
    assert "| macvlan | Kuryr (Kuryr IPAM) | 0.480 | 0.576 |" in text
    assert "| vlan | Docker bridge | 0.400 | 0.440 |" in text
    assert "1.20 x (p90 1.31 x): target met" in text
    assert "1.50 x (p90 1.64 x): target NOT met" in text
    assert "0 sync, 2 in the background (median of 6)" in text
    assert "| vlan (`vm2`) | 1.50 x (p90 1.64 x): target NOT met | not counted |" in text
    assert "kuryr-libnetwork (nested)" in text and "8021q" in text
    assert "started the VMs" in text


def test_a_mode_without_its_vm_or_network_says_why() -> None:
    measured = {
        **MEASURED,
        "modes": {
            "macvlan": {"error": "no VM in macvlan mode runs: left alone"},
            "vlan": {
                **mode_entry("vm2", 0.4, 0.5),
                "create": {"bridge": {"ok": True}, "kuryr": {"ok": False, "error": "boom"}},
            },
        },
    }
    text = "\n".join(nested_report.section({"nested": measured}))
    assert "| macvlan |  | n/a | n/a | n/a | 0 | no VM in macvlan mode runs: left alone |" in text
    assert "network create failed: `boom`" in text


def test_a_failed_phase_says_why() -> None:
    text = "\n".join(nested_report.section({"nested": {**MEASURED, "error": "RuntimeError: x"}}))
    assert "Not measured: RuntimeError: x" in text
    assert nested_report.section({}) == []


def test_write_puts_the_section_before_several_hosts_and_leaves_the_rest(tmp_path: Path) -> None:
    (tmp_path / "benchmarks.md").write_text(PAGE)
    other = {"date": "2026-12-06T01:00:00+00:00", "multihost": {"x": 1}}
    (tmp_path / "benchmarks.json").write_text(json.dumps(other))
    nested_report.write(MEASURED, tmp_path)
    written = json.loads((tmp_path / "benchmarks.json").read_text())
    assert {k: v for k, v in written.items() if k != "nested"} == other
    page = (tmp_path / "benchmarks.md").read_text()
    assert page.index("## Peak RSS") < page.index("## Nested mode") < page.index("## Several")
    nested_report.write(MEASURED, tmp_path)
    assert (tmp_path / "benchmarks.md").read_text() == page


def test_make_bench_runs_the_nested_phase_unless_told_not_to() -> None:
    assert parse_args([]).nested is True
    assert parse_args(["--no-nested"]).nested is False
    assert nested.parse_args(["--runs", "5"]).runs == 5


def test_the_wait_for_an_idle_machine_is_said_and_whether_it_ran_out() -> None:
    modes = {
        "macvlan": {**MEASURED["modes"]["macvlan"], "settle_s": 3.2},
        "vlan": {**MEASURED["modes"]["vlan"], "settle_s": 45.1},
    }
    text = "\n".join(nested_report.section({"nested": {**MEASURED, "modes": modes}}))
    assert "at most 45 s: macvlan 3.2 s, vlan 45.1 s (the limit: the machine was busy)." in text
    modes["vlan"]["settle_s"] = 1.0
    text = "\n".join(nested_report.section({"nested": {**MEASURED, "modes": modes}}))
    assert "macvlan 3.2 s, vlan 1 s." in text
