"""The seed's scenario for a human (``make demo``): a Kuryr network ``test``, two containers on
it, their Neutron addresses and MACs, a ping between them, the Neutron network and ports and
the OVN logical switch. Everything is left running to play with; the end says how to clean up.

Each container's port is found the way the README tells a user to: ``kuryr port CONTAINER``
(the daemon's local state, right after ``docker run``); Neutron's view of it is shown once the
port's bookkeeping (device_id, name, tags) is done, which the default ``[pool] bookkeeping =
deferred`` promises within :func:`kuryr.ops.port.bookkeeping_bound`.

Re-running is safe: the network is reused when it is a Kuryr one, the two containers are
replaced. Any failed step stops the demo with a one-line reason and exit status 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kuryr import config as config_mod
from kuryr.domain.ports.port import Port
from kuryr.ops.admin_api import BOOKKEEPING_DONE
from kuryr.ops.port import bookkeeping_bound
from kuryr.stack.daemon import executable
from kuryr.stack.layout import NB_PORT, NEUTRON_URL, PLUGIN_SOCK, Layout

NETWORK = "test"
CONTAINERS = ("demo1", "demo2")
IMAGE = "kuryr/busybox"
NB_DB = f"tcp:127.0.0.1:{NB_PORT}"
ACTIVE_WAIT = 60.0


class DemoError(Exception):
    """A step failed; the message says which and why."""


def _run(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DemoError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip()
        raise DemoError(f"`{' '.join(argv)}` failed: {reason}")
    return proc.stdout.strip()


def _kuryr(*args: str) -> str:
    """The kuryr command, on the stack's daemon."""
    return _run([executable(), "--config-file", str(_config_file()), *args])


def _config_file() -> Path:
    return Layout.resolve(None).sub("kuryr.conf")


def _neutron(path: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{NEUTRON_URL}/v2.0/{path}", timeout=30) as resp:
            body: dict[str, Any] = json.load(resp)
    except (OSError, urllib.error.URLError) as exc:
        raise DemoError(f"Neutron at {NEUTRON_URL} did not answer GET {path}: {exc}") from exc
    return body


def _section(title: str) -> None:
    print(f"\n=== {title}")


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _preflight() -> None:
    if not PLUGIN_SOCK.exists():
        raise DemoError(f"the Kuryr daemon socket {PLUGIN_SOCK} is missing: run `kuryr stack up`")
    _run(["docker", "version", "--format", "{{.Server.Version}}"])
    _neutron("networks?limit=1")


def _network() -> str:
    """Reuse a Kuryr network ``test`` left by an earlier demo, else create it; returns its id."""
    found = subprocess.run(
        ["docker", "network", "inspect", NETWORK], capture_output=True, text=True, check=False
    )
    if found.returncode == 0:
        info = json.loads(found.stdout)[0]
        if info["Driver"] != "kuryr" or info["IPAM"]["Driver"] != "kuryr":
            raise DemoError(
                f"a Docker network {NETWORK!r} exists with driver {info['Driver']!r} and IPAM "
                f"{info['IPAM']['Driver']!r}; remove it (`docker network rm {NETWORK}`) first"
            )
        print(f"reusing the Kuryr network {NETWORK!r} from an earlier demo")
        return str(info["Id"])
    argv = ["docker", "network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", NETWORK]
    print("$ " + " ".join(argv))
    return _run(argv)


def _start_containers() -> None:
    for name in CONTAINERS:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        argv = ["docker", "run", "-d", "--name", name, "--net", NETWORK, IMAGE, "sleep", "inf"]
        print("$ " + " ".join(argv))
        _run(argv)


def _neutron_network(docker_id: str) -> dict[str, Any]:
    tags = f"kuryr.net.uuid.lh:{docker_id[:32]},kuryr.net.uuid.uh:{docker_id[32:]}"
    nets: list[dict[str, Any]] = _neutron(f"networks?tags={tags}")["networks"]
    if len(nets) != 1:
        raise DemoError(f"expected one Neutron network tagged for {docker_id}, found {len(nets)}")
    return nets[0]


def _local_report(container: str) -> dict[str, Any]:
    """The container's port on ``test`` as ``kuryr port --json`` tells it."""
    reports = json.loads(_kuryr("port", "--json", container))["ports"]
    on_test = [r for r in reports if r["network"] == NETWORK]
    if len(on_test) != 1:
        raise DemoError(f"`kuryr port {container}` shows {len(on_test)} ports on {NETWORK!r}")
    report: dict[str, Any] = on_test[0]
    return report


def _bookkept(container: str, bound: float) -> dict[str, Any]:
    """``kuryr port`` once the port's bookkeeping is in Neutron, within the stated bound."""
    deadline = time.monotonic() + bound
    while True:
        report = _local_report(container)
        if report["bookkeeping"] == BOOKKEEPING_DONE:
            return report
        if time.monotonic() > deadline:
            raise DemoError(
                f"{container}'s port {report['port_id']}: Neutron bookkeeping still pending "
                f"after {bound:.0f}s, the bound the README states"
            )
        time.sleep(0.2)


def _endpoint_port(container: str, local: dict[str, Any]) -> Port:
    """Neutron's port carrying the endpoint's device_id: the one ``kuryr port`` named."""
    endpoint_id = local["endpoint_id"]
    ports = [Port.from_neutron(raw) for raw in _neutron(f"ports?device_id={endpoint_id}")["ports"]]
    found = [p.id for p in ports]
    if found != [local["port_id"]]:
        raise DemoError(
            f"Neutron's ports with {container}'s device_id are {found}, "
            f"`kuryr port` says {local['port_id']}"
        )
    return ports[0]


def _wait_active(port_id: str) -> Port:
    deadline = time.monotonic() + ACTIVE_WAIT
    while True:
        port = Port.from_neutron(_neutron(f"ports/{port_id}")["port"])
        if port.status == "ACTIVE" or time.monotonic() > deadline:
            return port
        time.sleep(0.5)


def _port_line(port: Port) -> str:
    ips = ", ".join(port.ips)
    return f"{port.id}  {port.mac_address}  {ips:<30}  {port.status:<6}  {port.device_owner}"


def _show_containers() -> dict[str, Port]:
    bound = bookkeeping_bound(config_mod.load(_config_file()))
    ports: dict[str, Port] = {}
    for name in CONTAINERS:
        _section(f"{name}: its port, from the Kuryr daemon")
        print(f"$ kuryr port {name}")
        print(_indent(_kuryr("port", name)))
        local = _bookkept(name, bound)
        port = _wait_active(_endpoint_port(name, local).id)
        ports[name] = port
        ips = ", ".join(port.ips)
        _section(f"{name}: Neutron port {port.id} (device_id {local['endpoint_id'][:12]})")
        print(f"Neutron says: IP {ips}, MAC {port.mac_address}, status {port.status}")
        print(f"$ docker exec {name} ip addr show eth0")
        print(_indent(_run(["docker", "exec", name, "ip", "addr", "show", "eth0"])))
        if port.status != "ACTIVE":
            raise DemoError(f"{name}'s port is still {port.status} after {ACTIVE_WAIT:.0f}s")
    return ports


def _ping(ports: dict[str, Port]) -> None:
    src, dst = CONTAINERS
    address = ports[dst].ips[0]
    _section(f"ping from {src} to {dst}")
    argv = ["docker", "exec", src, "ping", "-c", "3", "-w", "15", address]
    print("$ " + " ".join(argv))
    print(_indent(_run(argv)))


def _show_neutron(network: dict[str, Any]) -> None:
    _section(f"Neutron network {network['name']} ({network['id']})")
    print(f"tags: {', '.join(sorted(network['tags']))}")
    for subnet_id in network["subnets"]:
        subnet = _neutron(f"subnets/{subnet_id}")["subnet"]
        print(
            f"subnet {subnet['name']}: {subnet['cidr']} gateway {subnet['gateway_ip']} "
            f"pool {subnet['subnetpool_id']}"
        )
    print("ports (id, MAC, IPs, status, owner):")
    for raw in _neutron(f"ports?network_id={network['id']}")["ports"]:
        print(_indent(_port_line(Port.from_neutron(raw))))


def _show_ovn(network: dict[str, Any]) -> None:
    switch = f"neutron-{network['id']}"
    _section(f"OVN logical switch {switch}")
    print(f"$ ovn-nbctl --db={NB_DB} show {switch}")
    print(_indent(_run(["ovn-nbctl", f"--db={NB_DB}", "show", switch])))


def _epilogue() -> None:
    _section("all of it is still running: play with it")
    hints = [
        ("docker exec -it demo1 sh", "a shell in demo1"),
        (f"docker run --rm -it --net {NETWORK} {IMAGE} sh", "a third container"),
        (f"curl -s {NEUTRON_URL}/v2.0/ports | jq .", "Neutron (noauth)"),
        (f"ovn-nbctl --db={NB_DB} show", "OVN northbound"),
        ("ovs-vsctl show", "the veths on br-int"),
        (f"kuryr --config-file {_config_file()} port demo1", "demo1's Neutron port"),
    ]
    width = max(len(command) for command, _ in hints)
    for command, why in hints:
        print(f"  {command.ljust(width)}  # {why}")
    print("clean up:")
    print(f"  docker rm -f {' '.join(CONTAINERS)} && docker network rm {NETWORK}")
    print("  make down    # stop the whole stack")


def run_demo() -> None:
    _preflight()
    _section(f"Docker network {NETWORK!r} on Kuryr (network and IPAM driver)")
    docker_id = _network()
    print(f"Docker network id {docker_id}")
    _start_containers()
    ports = _show_containers()
    _ping(ports)
    network = _neutron_network(docker_id)
    _show_neutron(network)
    _show_ovn(network)
    _epilogue()


def main() -> int:
    try:
        run_demo()
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
