"""The multi-host benchmark's pure parts: parsing ping replies, memory rollups and the host
list, classifying a host's processes, the phase's summaries, and its report section put into
a page without touching the other sections."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from bench import (
    mhcount,
    mhhosts,
    mhload,
    mhmemory,
    mhprobe,
    mhthroughput,
    multihost,
    multihost_report,
    procs,
    tcpconnect,
    tcpthroughput,
)
from bench.calls import Call
from bench.dockercli import Outcome
from bench.params import parse_args

PING_OUTPUT = """\
PING 10.238.4.7 (10.238.4.7) 56(84) bytes of data.
[1764942000.123456] 64 bytes from 10.238.4.7: icmp_seq=1 ttl=64 time=0.512 ms
[1764942000.323456] 64 bytes from 10.238.4.7: icmp_seq=2 ttl=64 time=1.05 ms
[1764942000.523456] From 10.238.4.1 icmp_seq=3 Destination Host Unreachable

--- 10.238.4.7 ping statistics ---
3 packets transmitted, 2 received, 33% packet loss, time 402ms
"""

ROLLUP = """\
55d5c6a1b000-7ffd8a3f7000 ---p 00000000 00:00 0                          [rollup]
Rss:               21504 kB
Pss:               15321 kB
Pss_Dirty:          9000 kB
Shared_Clean:       6000 kB
"""


def outcome(elapsed: float, returncode: int = 0, stderr: str = "") -> Outcome:
    return Outcome(("docker", "run"), 100.0, 100.0 + elapsed, returncode, "", stderr)


def test_ping_replies_carry_their_arrival_time_and_rtt() -> None:
    assert mhprobe.replies(PING_OUTPUT) == [(1764942000.123456, 0.512), (1764942000.323456, 1.05)]
    assert mhprobe.parse_reply("PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.") is None


def test_a_probe_runs_in_the_containers_network_namespace() -> None:
    argv = mhprobe.in_netns(4242, ["ping", "-c", "1", "10.0.0.1"])
    assert argv[:4] == ["nsenter", "-t", "4242", "-n"]
    assert argv[4:] == ["ping", "-c", "1", "10.0.0.1"]


def test_pss_and_rss_from_smaps_rollup() -> None:
    assert procs.parse_rollup(ROLLUP) == (15321, 21504)
    assert procs.parse_rollup("Rss: 10 kB\n") is None


@pytest.mark.parametrize(
    ("comm", "argv", "expected"),
    [
        ("ovs-vswitchd", ["ovs-vswitchd", "unix:/x/db.sock"], "ovs-vswitchd"),
        ("ovsdb-server", ["ovsdb-server", "/x/conf.db"], "ovsdb-server"),
        ("ovn-controller", ["ovn-controller"], "ovn-controller"),
        ("dockerd", ["dockerd", "--data-root=/x"], "dockerd"),
        ("containerd", ["containerd", "--config", "/x"], "containerd"),
        ("kuryr", ["/v/bin/python3", "/v/bin/kuryr", "--config-file", "/c", "serve"], "kuryr"),
        ("python3", ["/v/bin/python3", "/v/bin/kuryr", "--config-file", "/c", "serve"], "kuryr"),
        ("python3", ["/v/bin/python3", "-m", "kuryr.stack.nsrelay", "/run/netns/x"], "relay"),
        ("containerd-shim", ["containerd-shim-runc-v2", "-id", "abc"], "shim"),
        ("httpd", ["httpd", "-f", "-p", "80"], "container"),
    ],
)
def test_a_hosts_processes_by_role(comm: str, argv: list[str], expected: str) -> None:
    assert mhmemory.role(comm, argv) == expected


def test_memory_summed_per_role_and_for_the_five_daemons() -> None:
    roles = mhmemory.by_role(
        [("dockerd", 100, 150), ("kuryr", 60, 70), ("shim", 5, 9), ("shim", 5, 9)]
    )
    assert roles["shim"] == {"processes": 2, "pss_kib": 10, "rss_kib": 18}
    assert mhmemory.totals(roles, mhmemory.DAEMONS) == {
        "processes": 2,
        "pss_kib": 160,
        "rss_kib": 220,
    }


def test_the_host_list_of_kuryr_stack_hosts() -> None:
    described = [
        {"name": "vm", "chassis": "vm", "docker_host": "unix:///var/run/docker.sock",
         "namespace": "", "main": True},
        {"name": "h2", "chassis": "h2", "main": False, "pids": [10, 11],
         "docker_host": "unix:///var/lib/kuryr-stack/hosts/h2/run/docker.sock"},
    ]  # fmt: skip
    main, h2 = mhhosts.parse(described)
    assert main.main and main.pids == ()
    assert not h2.main and h2.pids == (10, 11)
    assert h2.socket == Path("/var/lib/kuryr-stack/hosts/h2/run/docker.sock")


def test_a_failed_kuryr_command_keeps_the_end_of_what_it_said() -> None:
    said = "\n".join(f"line {i}" for i in range(10))
    failed = mhhosts.command_row(
        Outcome(("/venv/bin/kuryr", "stack", "up"), 10.0, 13.21, 1, "", said)
    )
    assert failed["command"] == "kuryr stack up"
    assert failed["seconds"] == 3.21 and not failed["ok"]
    assert failed["error"].splitlines() == [f"line {i}" for i in range(5, 10)]
    listed = Outcome(("/venv/bin/kuryr", "stack", "hosts"), 10.0, 10.5, 0, "[]", "")
    assert "error" not in mhhosts.command_row(listed)


def test_the_host_that_starts_first_alternates() -> None:
    assert multihost.order(["main", "remote"], 0) == ["main", "remote"]
    assert multihost.order(["main", "remote"], 1) == ["remote", "main"]


def test_network_arguments_for_a_subnet() -> None:
    assert multihost.create_args("10.238.7.0/24")[-4:] == (
        "--subnet",
        "10.238.7.0/24",
        "--gateway",
        "10.238.7.1",
    )


def test_timings_keep_failures_apart() -> None:
    done = multihost.timings([outcome(0.5), outcome(0.7), outcome(9.0, 1, "Error: boom")])
    assert done["samples"] == pytest.approx([0.5, 0.7])
    assert done["summary"]["count"] == 2
    assert done["errors"] == 1 and done["error_examples"] == ["Error: boom"]
    assert multihost.timings([])["summary"] is None


def test_the_cli_runs_the_phase_with_its_settings() -> None:
    args = multihost.parse_args(["--starts", "3", "--ping-interval-s", "0.1"])
    assert args.starts == 3 and args.ping_interval_s == 0.1
    assert args.ready == multihost.Settings().ready
    assert multihost.parse_args(["--load-containers", "20"]).load_containers == 20
    assert not parse_args(["--no-multihost"]).multihost
    assert parse_args([]).multihost


def summary(med: float, n: int) -> dict[str, Any]:
    return {"summary": {"median": med, "p90": med * 1.5, "min": med, "max": med, "count": n}}


MEASURED: dict[str, Any] = {
    "date": "2026-12-05T13:50:00+00:00",
    "kuryr_commit": "abc1234",
    "duration_s": 140.2,
    "cores": 2,
    "load_before": [1.5, 1.2, 1.0],
    "load_after": [2.0, 1.4, 1.1],
    "parameters": multihost.Settings().__dict__,
    "hosts": {"main": "vm", "remote": "h2"},
    "daemons": {
        "main": {"pool": {"min": 20, "max": 40, "batch": 4}, "tx_checksum_offload": False},
        "remote": {"pool": {"min": 2, "max": 4, "batch": 2}, "tx_checksum_offload": False},
    },
    "network": {"cidr": "10.238.7.0/24"},
    "lifecycle": {
        "up": {
            "command": "kuryr stack up --hosts 3",
            "seconds": 12.5,
            "ok": True,
            "hosts_added": 2,
        },
        "down": {"command": "kuryr stack down --hosts-only", "seconds": 6.0, "ok": True},
        "restore": {"command": "kuryr stack up", "seconds": 4.0, "ok": True},
    },
    "start": {"main": summary(0.4, 12), "remote": summary(0.6, 12)},
    "rm": {"main": summary(0.3, 12), "remote": summary(0.3, 12)},
    "readiness": {
        "main": {**summary(0.02, 8), "probe_after_s": {"median": 0.01}, "errors": 0},
        "remote": {
            **summary(0.05, 8),
            "probe_after_s": {"median": 0.012},
            "errors": 1,
            "error_examples": ["no ping reply within 15 s"],
        },
    },
    "rtt_ms": {
        "main": {**summary(0.2, 20), "lost": 0},
        "remote": {**summary(0.5, 20), "lost": 0},
        "bridge": {**summary(0.1, 20), "lost": 0},
    },
    "tcp_connect_ms": {
        "main": summary(0.3, 20),
        "remote": summary(0.6, 20),
        "bridge": summary(0.15, 20),
    },
    "throughput_mb_s": {
        "main": {**summary(800.0, 7), "failed": 0},
        "remote": {**summary(200.0, 7), "failed": 1},
        "bridge": {**summary(1600.0, 7), "failed": 0},
    },
    "load": {
        "network": "mhbench-net",
        "holder": "vm",
        "idle": summary(0.5, 10),
        "fill": {"asked": 200, "running": 200, "seconds": 61.2, "errors": 0},
        "settle_s": 12.0,
        "loaded": summary(0.6, 10),
        "empty": {"seconds": 30.5, "errors": 0},
    },
    "neutron_requests": {
        "hosts": ["vm", "h2", "h3"],
        "reps": 6,
        "one_host": {
            "start": {"runs": [{}] * 6, "median": {"sync": 2, "async": 1, "total": 3}},
            "stop": {"runs": [{}] * 6, "median": {"sync": 1, "async": 1, "total": 2}},
        },
        "three_hosts": {
            "start": {
                "runs": [{}] * 6,
                "median": {"sync": 2, "async": 1, "total": 3, "by_host": {"vm": 3, "h2": 0}},
            },
            "stop": {"runs": [{}] * 6, "median": {"sync": 1, "async": 1, "total": 2}},
        },
        "disturbed": [],
        "restore_notes": [],
    },
    "memory": {
        "roles": {d: {"processes": 1, "pss_kib": 10240, "rss_kib": 20480} for d in mhmemory.DAEMONS}
        | {"shim": {"processes": 1, "pss_kib": 1024, "rss_kib": 2048}},
        "daemons": {"processes": 5, "pss_kib": 51200, "rss_kib": 102400},
        "all": {"processes": 6, "pss_kib": 52224, "rss_kib": 104448},
        "missing": [],
    },
}


def test_the_section_has_the_figures_ratios_and_caveats() -> None:
    text = "\n".join(multihost_report.section({"multihost": MEASURED}))
    assert text.startswith(multihost_report.HEADING)
    assert "2026-12-05T13:50:00+00:00" in text and multihost_report.COMMAND in text
    assert "Machine load" in text and "1.5 before" in text
    assert (
        "| `docker run -d`, s | 0.600 (p90 0.900, n=12) | 0.400 (p90 0.600, n=12) | 1.50 x |"
        in (text)
    )
    # Fewer than 10 samples: no p90.
    assert "0.050 (n=8)" in text
    assert "| `kuryr stack up --hosts 3` | adds 2 hosts to the running stack | 12.5 |" in text
    assert "about 3.0 s a host" in text
    assert "| **the five summed** | 5 | **50.0** | 100.0 |" in text
    assert "readiness on h2: 1 failed" in text
    assert "throughput_mb_s on the route across hosts: 1 failed" in text


def test_the_section_compares_routes_with_dockers_bridge() -> None:
    text = "\n".join(multihost_report.section({"multihost": MEASURED}))
    # across ÷ same host, across ÷ bridge, same-host Kuryr ÷ bridge
    assert "| ping RTT, ms | 0.500 (p90 0.750, n=20) | 0.200 (p90 0.300, n=20) |" in text
    assert "| 2.50 x | 5.00 x | 2.00 x |" in text
    assert (
        "| TCP throughput, MB/s (64 MiB a transfer) | 200.0 (n=7) | 800.0 (n=7)"
        " | 1600.0 (n=7) | 0.25 x | 0.12 x | 0.50 x |" in text
    )


def test_the_section_gives_run_rm_under_load_as_a_ratio_to_idle() -> None:
    text = "\n".join(multihost_report.section({"multihost": MEASURED}))
    assert "| `h2` while `vm` holds 200 running containers | 0.600 (p90 0.900, n=10) |" in text
    assert "| loaded ÷ idle | 1.20 x |" in text
    assert "filling took 61.2 s (8 `docker run -d` at a time)" in text


def test_the_section_gives_neutron_requests_on_one_host_and_three() -> None:
    text = "\n".join(multihost_report.section({"multihost": MEASURED}))
    assert "| start (`docker run -d`) | 3 (2 + 1, n=6) | 3 (2 + 1, n=6) | 1.00 x |" in text
    assert "Medians per daemon with 3 hosts: start: `vm` 3, `h2` 0." in text
    skipped = {**MEASURED, "neutron_requests": {"skipped": "2 hosts run, 3 are needed"}}
    text = "\n".join(multihost_report.section({"multihost": skipped}))
    assert "Not measured in this run: 2 hosts run, 3 are needed." in text


def test_hosts_that_were_up_already_show_the_last_measured_lifecycle() -> None:
    now = {**MEASURED, "lifecycle": {"skipped": "the simulated hosts were already up"}}
    multihost_report.carry_over(now, MEASURED)
    text = "\n".join(multihost_report.section({"multihost": now}))
    assert "Not measured in this run: the simulated hosts were already up." in text
    assert f"From the run of {MEASURED['date']} (UTC):" in text
    assert "12.5" in text


def test_a_failed_phase_says_why() -> None:
    failed = {"date": "2026-12-05T13:50:00+00:00", "error": "RuntimeError: no h2"}
    assert "Not measured: RuntimeError: no h2" in multihost_report.section({"multihost": failed})
    assert multihost_report.section({}) == []


PAGE = """\
# Benchmarks

Intro.

## Peak RSS

| daemon | MiB |
|---|---|
| kuryr | 80.0 |

## How it is measured

- text
"""


def test_splice_inserts_before_the_method_and_then_replaces_in_place() -> None:
    first = multihost_report.splice(PAGE, ["## Several hosts", "", "one", ""])
    assert first.index("## Several hosts") < first.index("## How it is measured")
    assert "| kuryr | 80.0 |\n\n## Several hosts\n\none\n\n## How it is measured" in first
    second = multihost_report.splice(first, ["## Several hosts", "", "two", ""])
    assert second == first.replace("one", "two")
    assert multihost_report.splice(second, ["## Several hosts", "", "two", ""]) == second


def test_splice_appends_to_a_page_without_a_method_section() -> None:
    spliced = multihost_report.splice("# Benchmarks\n\nIntro.\n", ["## Several hosts", "", "x"])
    assert spliced == "# Benchmarks\n\nIntro.\n\n## Several hosts\n\nx\n"


def test_write_leaves_the_other_sections_and_keys_alone(tmp_path: Path) -> None:
    (tmp_path / "benchmarks.md").write_text(PAGE)
    other = {"date": "2026-11-29T01:40:15+00:00", "start_latency": {"kuryr": {"x": 1}}}
    (tmp_path / "benchmarks.json").write_text(json.dumps(other, indent=1, sort_keys=True) + "\n")
    multihost_report.write(MEASURED, tmp_path)
    written = json.loads((tmp_path / "benchmarks.json").read_text())
    assert {k: v for k, v in written.items() if k != "multihost"} == other
    assert written["multihost"]["date"] == MEASURED["date"]
    page = (tmp_path / "benchmarks.md").read_text()
    assert page.replace("\n".join(multihost_report.section(written)), "") == PAGE.replace(
        "## How it is measured", "\n## How it is measured"
    )


def test_tcpconnect_connects_and_reports_a_refused_port_as_none() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (tcpconnect.connect_ms("127.0.0.1", port) or -1.0) >= 0.0
    assert tcpconnect.connect_ms("127.0.0.1", port) is None


def test_tcpthroughput_times_a_transfer_the_sink_read_in_full() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def one() -> None:
            conn, _ = server.accept()
            tcpthroughput.answer(conn, bytearray(4096))

        sink = threading.Thread(target=one)
        sink.start()
        took = tcpthroughput.send("127.0.0.1", port, 3 * tcpthroughput.CHUNK + 7)
        sink.join()
    assert took is not None and took > 0
    assert tcpthroughput.send("127.0.0.1", port, 10) is None


def test_throughput_in_mb_per_second_leaves_failed_transfers_out() -> None:
    assert mhthroughput.rates_mb_s(64_000_000, [0.5, None, 0.25]) == [128.0, 256.0]
    row = multihost.throughput_row(64_000_000, [0.5, None])
    assert row["samples"] == [128.0] and row["failed"] == 1
    assert row["summary"]["median"] == 128.0


def test_the_spanned_network_is_a_22_for_the_load_and_another_host_adopts_it() -> None:
    cidr = multihost.spanned_cidr()
    block, third, _, rest = cidr.replace("/", ".").rsplit(".", 3)
    assert block == multihost.CIDR_BLOCK and rest == "22" and int(third) % 4 == 0
    assert 0 < int(third) < 256
    adopt = multihost.adopt_args("10.238.8.0/22", "net-id")
    assert adopt[-4:] == (
        "--ipam-opt",
        "neutron.subnet.name=kuryr-subnet-10.238.8.0/22",
        "-o",
        "neutron.net.uuid=net-id",
    )
    assert "10.238.8.1" in adopt


def test_the_load_is_started_and_removed_on_its_host() -> None:
    host = mhhosts.Host("vm", "unix:///var/run/docker.sock", True)
    names = [f"mhbench-load-{i}" for i in range(23)]
    runs = mhload.sleepers(host, "mhbench-net", names[:1])
    assert runs == [
        ["-H", "unix:///var/run/docker.sock", "run", "-d", "--name", "mhbench-load-0",
         "--net", "mhbench-net", "kuryr/busybox", "sleep", "3600"],
    ]  # fmt: skip
    removals = mhload.removals(host, names)
    assert [len(r) - 4 for r in removals] == [10, 10, 3]
    outcomes = [outcome(0.1), outcome(0.1, 1, "Error: no address"), outcome(0.1)]
    assert mhload.started(names[:3], outcomes) == ["mhbench-load-0", "mhbench-load-2"]
    row = mhload.fill_row(names[:3], outcomes, 4.04)
    assert row == {
        "asked": 3, "running": 2, "seconds": 4.0, "errors": 1,
        "error_examples": ["Error: no address"],
    }  # fmt: skip


TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:4D05 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:4D06 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0
"""


def test_a_proxy_listens_once_its_port_is_in_listen_state() -> None:
    assert mhcount.listens(TCP_TABLE, 0x4D05)
    # Connected, not listening.
    assert not mhcount.listens(TCP_TABLE, 0x4D06)
    assert not mhcount.listens(TCP_TABLE, 19701)


def test_the_counting_copies_point_at_the_proxy_without_periodic_reconciliation() -> None:
    assert mhcount.counting_settings("http://127.0.0.1:19702") == {
        ("neutron", "endpoint"): "http://127.0.0.1:19702",
        ("reconcile", "interval"): "0",
    }


def call(
    who: str, at: float, method: str = "GET", path: str = "/v2.0/ports", rid: str | None = None
) -> Call:
    return Call(who, at, at + 0.01, method, path, 200, rid)


def test_a_window_sums_every_daemons_calls_while_and_after_the_command() -> None:
    """Every daemon is Kuryr's: sync are the calls carrying a Docker request's id."""
    ran = Outcome(("docker", "run"), 100.0, 101.0, 0, "", "")
    calls = [
        call("vm", 99.0),  # before: not counted
        call("vm", 100.5, "POST", rid="req-3f1c2b9e-8d7a-4c6b-9e5f-1a2b3c4d5e6f"),
        call("vm", 100.7),  # a background read while the command ran: async
        call("vm", 102.0, "PUT", "/v2.0/ports/0d3c5c3e-4a3b-4c1e-9d7e-2f1a3b4c5d6e"),
        call("h2", 101.5),
        call("h3", 104.0),  # after quiet: not counted
    ]
    counted = mhcount.window(calls, ["vm", "h2", "h3"], ran, quiet=103.0)
    assert counted["sync"] == 1 and counted["async"] == 3 and counted["total"] == 4
    assert counted["by_host"] == {"vm": 3, "h2": 1, "h3": 0}
    assert counted["kinds"] == {
        "GET /v2.0/ports": 2,
        "POST /v2.0/ports": 1,
        "PUT /v2.0/ports/{id}": 1,
    }


def test_count_medians_leave_failed_commands_out() -> None:
    runs = [
        {"ok": True, "sync": 2, "async": 1, "total": 3, "by_host": {"vm": 3, "h2": 0}},
        {"ok": True, "sync": 2, "async": 3, "total": 5, "by_host": {"vm": 4, "h2": 1}},
        {"ok": False, "sync": 9, "async": 9, "total": 18, "by_host": {"vm": 18}},
    ]
    done = mhcount.summary(runs)
    assert done["median"] == {
        "sync": 2,
        "async": 2,
        "total": 4,
        "by_host": {"vm": 3.5, "h2": 0.5},
    }
    assert done["failed"] == 1 and len(done["runs"]) == 3
    assert mhcount.summary([])["median"] is None
