"""The running local stack, checked through its real components (non-disruptive)."""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kuryr.stack import lifecycle, proc
from kuryr.stack.daemon import KuryrDaemon, activates
from kuryr.stack.errors import StackError
from kuryr.stack.layout import OVN_RUN, OVS_RUN, Layout
from tests.conftest import StackFacts

pytestmark = pytest.mark.stack

PREFIX = "stk-"


def neutron(facts: StackFacts, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{facts.neutron_url}/v2.0{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def nb_find(table: str, condition: str) -> list[str]:
    done = subprocess.run(
        ["ovn-nbctl", "--timeout=10", "--bare", "--columns=name", "find", table, condition],
        capture_output=True,
        text=True,
        check=True,
        timeout=15,
    )
    return done.stdout.split()


@pytest.fixture
def network(stack: StackFacts) -> Iterator[dict[str, Any]]:
    name = f"{PREFIX}net-{secrets.token_hex(4)}"
    net = neutron(stack, "POST", "/networks", {"network": {"name": name}})["network"]
    try:
        yield net
    finally:
        for port in neutron(stack, "GET", f"/ports?network_id={net['id']}")["ports"]:
            if port["device_owner"] != "network:distributed":
                neutron(stack, "DELETE", f"/ports/{port['id']}")
        neutron(stack, "DELETE", f"/networks/{net['id']}")


def stack_pids(facts: StackFacts) -> dict[str, int | None]:
    pidfiles = {
        "ovsdb-server": OVS_RUN / "ovsdb-server.pid",
        "ovs-vswitchd": OVS_RUN / "ovs-vswitchd.pid",
        "ovn-northd": OVN_RUN / "ovn-northd.pid",
        "ovn-controller": OVN_RUN / "ovn-controller.pid",
        "neutron-server": facts.layout.pidfile("neutron-server"),
        "dockerd": facts.layout.pidfile("dockerd"),
        "postgres": facts.layout.sub("postgres") / "postmaster.pid",
    }
    return {name: proc.read_pid(path) for name, path in pidfiles.items()}


def test_every_component_is_healthy(stack: StackFacts) -> None:
    report = lifecycle.status(stack.layout)
    assert [h for h in report if not h.healthy] == []


def test_default_subnetpools(stack: StackFacts) -> None:
    pools = {p["name"]: p for p in neutron(stack, "GET", "/subnetpools")["subnetpools"]}
    v4, v6 = pools["kuryr"], pools["kuryr6"]
    assert v4["prefixes"] == ["10.10.0.0/16"]
    assert int(v4["default_prefixlen"]) == 24
    prefix6 = ipaddress.IPv6Network(v6["prefixes"][0])
    assert prefix6.prefixlen == 48
    assert prefix6.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert int(v6["default_prefixlen"]) == 64


def test_network_subnet_and_port_appear_in_ovn(stack: StackFacts, network: dict[str, Any]) -> None:
    subnet = neutron(
        stack,
        "POST",
        "/subnets",
        {"subnet": {"network_id": network["id"], "ip_version": 4, "cidr": "10.99.1.0/24"}},
    )["subnet"]
    port = neutron(
        stack,
        "POST",
        "/ports",
        {
            "port": {
                "network_id": network["id"],
                "name": f"{PREFIX}port",
                "binding:host_id": stack.chassis_hostname,
            }
        },
    )["port"]
    switch = f"neutron-{network['id']}"
    assert nb_find("logical_switch", f"name={switch}") == [switch]
    assert nb_find("logical_switch_port", f"name={port['id']}") == [port["id"]]
    addresses = subprocess.run(
        ["ovn-nbctl", "--timeout=10", "lsp-get-addresses", port["id"]],
        capture_output=True,
        text=True,
        check=True,
        timeout=15,
    ).stdout
    assert port["mac_address"] in addresses
    assert port["fixed_ips"][0]["ip_address"] in addresses
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]


def test_metadata_port_is_created_with_a_dhcp_subnet(
    stack: StackFacts, network: dict[str, Any]
) -> None:
    neutron(
        stack,
        "POST",
        "/subnets",
        {"subnet": {"network_id": network["id"], "ip_version": 4, "cidr": "10.99.2.0/24"}},
    )
    owners = [
        p["device_owner"]
        for p in neutron(stack, "GET", f"/ports?network_id={network['id']}")["ports"]
    ]
    assert owners == ["network:distributed"]


def test_second_up_changes_nothing(stack: StackFacts) -> None:
    before = stack_pids(stack)
    configs = [*stack.layout.sub("neutron").glob("*.*"), stack.layout.sub("kuryr.conf")]
    mtimes = {str(p): p.stat().st_mtime for p in configs if p.exists()}
    report = lifecycle.up(stack.layout)
    assert [h.name for h in report if not h.healthy] == []
    assert stack_pids(stack) == before
    assert {str(p): p.stat().st_mtime for p in configs if p.exists()} == mtimes


# The venv's interpreter lives under /root, out of reach of other users: import the CLI as
# root, then drop to nobody before running it.
_AS_NOBODY = """
import os, sys
import kuryr.cli, kuryr.stack.cli
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.exit(kuryr.cli.main(["stack", "up"]))
"""


def test_not_root_gets_one_line_reason(stack: StackFacts) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "kuryr stack: stack: must run as root (it starts OVS, OVN, PostgreSQL, dockerd)"
    ]


def test_busybox_image_runs(stack: StackFacts) -> None:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--net=none",
            "--name",
            f"{PREFIX}bb-{secrets.token_hex(3)}",
            "kuryr/busybox",
            "sh",
            "-c",
            "id -un && ls /tmp",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "root"


def test_a_daemon_that_cannot_start_fails_with_its_last_words(
    stack: StackFacts, tmp_path: Path
) -> None:
    """A private layout (its own config, pidfile, log and plugin socket, out of dockerd's
    sight) whose state directory cannot be made: ``kuryr serve`` exits while building."""
    layout = Layout(tmp_path / "stack", plugin_sock=tmp_path / "plugins" / "kuryr.sock")
    layout.create()
    layout.sub("kuryr-state").write_text("a file where the daemon's state directory goes\n")
    layout.log("kuryr").write_text("an earlier run's last line\n")
    daemon = KuryrDaemon(layout)
    try:
        with pytest.raises(StackError) as caught:
            daemon.start()
    finally:
        daemon.stop()
    reason = str(caught.value)
    assert reason.splitlines() == [reason]
    assert reason.startswith("kuryr: the Kuryr daemon (kuryr serve) exited during start: ")
    last = layout.log("kuryr").read_text().strip().splitlines()[-1]
    assert reason.endswith(f": {last.strip()}")
    assert "kuryr-state" in last
    assert caught.value.log == layout.log("kuryr")
    assert not layout.plugin_sock.exists()
    assert activates(stack.plugin_sock)[0]
