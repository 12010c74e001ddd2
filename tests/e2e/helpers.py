"""Small clients the end-to-end tests share: the docker CLI, Neutron over plain HTTP, OVN NB,
and a bounded poll. Everything is argv-based; nothing goes through a shell."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from kuryr.naming import POOL_TAG
from tests.removals_wait import stack_admin_socket, wait_removed

NEUTRON_URL = "http://127.0.0.1:9696/v2.0"
NB_DB = "tcp:127.0.0.1:6641"
IMAGE = "kuryr/busybox"
# The client that matches dockerd 20.10: newer CLIs refuse ``--mac-address`` with ``--net``
# below API 1.44, before Kuryr is ever asked.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
PLUGIN_SOCK = "/run/docker/plugins/kuryr.sock"
PORT_OWNER = "compute:kuryr"
NEUTRON_MAC_PREFIX = "fa:16:3e:"
DEFAULT_POOLS = ("kuryr", "kuryr6")

# Bounds for eventual consistency (Neutron status, asynchronous deletes). Generous on purpose:
# they only stop a broken run from hanging, they never judge speed.
SETTLE_TIMEOUT = 60.0

T = TypeVar("T")


class CommandError(AssertionError):
    """A command the test relies on failed; the message carries its argv and stderr."""


def run(
    argv: list[str], check: bool = True, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise CommandError(
            f"{argv!r} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def run_cleanups(steps: list[Callable[[], object]]) -> None:
    """Run every teardown step even when some fail, then fail naming all that did."""
    errors: list[str] = []
    for step in steps:
        try:
            step()
        except Exception as exc:
            errors.append(repr(exc))
    if errors:
        raise AssertionError("cleanup failed: " + "; ".join(errors))


def docker(*args: str, check: bool = True) -> str:
    return run([DOCKER, *args], check=check).stdout.strip()


def unique_name() -> str:
    """A name no parallel run will pick: the e2e prefix plus a random suffix."""
    return f"e2e-{secrets.token_hex(4)}"


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = SETTLE_TIMEOUT) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def settle(probe: Callable[[], T], expected: T, timeout: float = SETTLE_TIMEOUT) -> T:
    """Poll ``probe`` until it returns ``expected`` or time runs out; return its last value,
    for the caller to assert on (so a failure shows what was really there)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def ovn_nbctl(*args: str) -> str:
    return run(["ovn-nbctl", f"--db={NB_DB}", *args]).stdout.strip()


def ovn_logical_ports(switch: str) -> set[str]:
    """Logical switch port names of ``switch`` (Neutron names them by port id)."""
    # lsp-list prints "<uuid> (<name>)" per port.
    return set(re.findall(r"\(([^)]+)\)", ovn_nbctl("lsp-list", switch)))


def ovn_switch_exists(switch: str) -> bool:
    return bool(ovn_nbctl("--bare", "--columns=name", "find", "Logical_Switch", f"name={switch}"))


def chassis_hostname() -> str:
    out = run(["ovs-vsctl", "get", "open", ".", "external-ids:hostname"]).stdout.strip()
    return out.strip('"')


def br_int_ports() -> set[str]:
    return set(run(["ovs-vsctl", "list-ports", "br-int"]).stdout.split())


def network_tags(docker_id: str) -> list[str]:
    return [f"kuryr.net.uuid.lh:{docker_id[:32]}", f"kuryr.net.uuid.uh:{docker_id[32:64]}"]


class Neutron:
    """Plain HTTP to Neutron noauth (no auth headers: admin in the default project)."""

    _SINGULAR = {
        "networks": "network",
        "subnets": "subnet",
        "ports": "port",
        "subnetpools": "subnetpool",
        "security-groups": "security_group",
        "security-group-rules": "security_group_rule",
        "routers": "router",
        "floatingips": "floatingip",
        "trunks": "trunk",
    }

    def __init__(self, url: str = NEUTRON_URL) -> None:
        self.url = url
        self.http = requests.Session()

    def _check(self, resp: requests.Response) -> None:
        if not resp.ok:
            raise AssertionError(
                f"Neutron {resp.request.method} {resp.url}: {resp.status_code} {resp.text}"
            )

    def find(self, resource: str, **filters: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.url}/{resource}", params=filters, timeout=30)
        self._check(resp)
        items: list[dict[str, Any]] = resp.json()[resource.replace("-", "_")]
        return items

    def show(self, resource: str, ident: str) -> dict[str, Any] | None:
        resp = self.http.get(f"{self.url}/{resource}/{ident}", timeout=30)
        if resp.status_code == 404:
            return None
        self._check(resp)
        item: dict[str, Any] = resp.json()[self._SINGULAR[resource]]
        return item

    def create(self, resource: str, **body: Any) -> dict[str, Any]:
        key = self._SINGULAR[resource]
        resp = self.http.post(f"{self.url}/{resource}", json={key: body}, timeout=60)
        self._check(resp)
        item: dict[str, Any] = resp.json()[key]
        return item

    def update(self, resource: str, ident: str, **body: Any) -> dict[str, Any]:
        key = self._SINGULAR[resource]
        resp = self.http.put(f"{self.url}/{resource}/{ident}", json={key: body}, timeout=60)
        self._check(resp)
        item: dict[str, Any] = resp.json()[key]
        return item

    def delete(self, resource: str, ident: str) -> None:
        """Delete; an already missing resource is fine (cleanup runs after the daemon's own)."""
        resp = self.http.delete(f"{self.url}/{resource}/{ident}", timeout=60)
        if resp.status_code != 404:
            self._check(resp)

    def router_interface(self, router_id: str, action: str, subnet_id: str) -> None:
        """``add`` or ``remove`` the router's interface on a subnet."""
        resp = self.http.put(
            f"{self.url}/routers/{router_id}/{action}_router_interface",
            json={"subnet_id": subnet_id},
            timeout=60,
        )
        self._check(resp)

    def set_tags(self, resource: str, ident: str, tags: list[str]) -> None:
        # Tags in a POST body are ignored by this Neutron; they must be PUT.
        resp = self.http.put(f"{self.url}/{resource}/{ident}/tags", json={"tags": tags}, timeout=30)
        self._check(resp)

    def port_forwardings(self, floating_ip_id: str) -> list[dict[str, Any]]:
        """The floating IP's port forwardings ([] once the floating IP is gone)."""
        resp = self.http.get(
            f"{self.url}/floatingips/{floating_ip_id}/port_forwardings", timeout=30
        )
        if resp.status_code == 404:
            return []
        self._check(resp)
        items: list[dict[str, Any]] = resp.json()["port_forwardings"]
        return items

    def counts(self) -> dict[str, int]:
        """How many of each resource exist: the before/after picture of 'nothing was created'."""
        kinds = ("networks", "subnets", "ports", "subnetpools", "security-groups")
        return {kind: len(self.find(kind)) for kind in kinds}

    def default_pools(self) -> dict[str, dict[str, Any]]:
        """The default subnetpools, reduced to what must never change."""
        found: dict[str, dict[str, Any]] = {}
        for name in DEFAULT_POOLS:
            pools = self.find("subnetpools", name=name)
            assert len(pools) == 1, f"expected one subnetpool {name!r}, found {len(pools)}"
            pool = pools[0]
            found[name] = {
                k: pool[k]
                for k in ("id", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen")
            }
            found[name]["prefixes"] = sorted(pool["prefixes"])
        return found

    def network_of_docker(self, docker_id: str) -> dict[str, Any]:
        """The one Neutron network carrying the Docker network id's lh/uh tags."""
        nets = self.find("networks", tags=",".join(network_tags(docker_id)))
        assert len(nets) == 1, f"expected one Neutron network tagged for {docker_id}, got {nets}"
        return nets[0]

    def port_of_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """The endpoint's one port. Kuryr writes device_id after answering Docker (journaled,
        in the background), so it is awaited, not expected at once."""
        ports = wait_for(
            lambda: self.find("ports", device_id=endpoint_id), f"device_id {endpoint_id}"
        )
        assert len(ports) == 1, f"expected one port with device_id {endpoint_id}, got {ports}"
        return ports[0]

    def wait_active(self, port_id: str) -> None:
        def active() -> bool:
            port = self.show("ports", port_id)
            return port is not None and port["status"] == "ACTIVE"

        wait_for(active, f"Neutron port {port_id} to go ACTIVE")

    def wait_gone(self, resource: str, ident: str) -> None:
        wait_for(lambda: self.show(resource, ident) is None, f"{resource} {ident} to be deleted")

    def wait_released(self, port_id: str) -> None:
        """A container's port after ``docker rm``: deleted, or back in Kuryr's port pool with
        nothing of the container left (empty device_id, no endpoint tags)."""

        def released() -> bool:
            port = self.show("ports", port_id)
            return port is None or (
                port["device_id"] == ""
                and POOL_TAG in port["tags"]
                and not any(t.startswith("kuryr.net.uuid.") for t in port["tags"])
            )

        wait_for(released, f"port {port_id} to be deleted or back in its pool, cleaned")


@dataclass
class Endpoint:
    """A container as seen on one Docker network."""

    container: str
    endpoint_id: str
    ipv4: str
    ipv6: str
    mac: str


@dataclass
class Eth0:
    """What the container itself sees on eth0."""

    mac: str
    addresses: set[str] = field(default_factory=set)


def docker_network_id(name: str) -> str:
    return docker("network", "inspect", "-f", "{{.Id}}", name)


def docker_network_subnets(name: str) -> list[str]:
    cfg = json.loads(docker("network", "inspect", "-f", "{{json .IPAM.Config}}", name))
    return [c["Subnet"] for c in cfg or []]


def endpoint(container: str, network: str) -> Endpoint:
    nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container))
    ep = nets[network]
    return Endpoint(
        container=container,
        endpoint_id=ep["EndpointID"],
        ipv4=ep["IPAddress"],
        ipv6=ep["GlobalIPv6Address"],
        mac=ep["MacAddress"],
    )


def eth0(container: str) -> Eth0:
    mac = docker("exec", container, "cat", "/sys/class/net/eth0/address").lower()
    seen = Eth0(mac=mac)
    for line in docker("exec", container, "ip", "-o", "addr", "show", "dev", "eth0").splitlines():
        words = line.split()
        for family in ("inet", "inet6"):
            if family in words:
                addr = ipaddress.ip_interface(words[words.index(family) + 1]).ip
                if not addr.is_link_local:
                    seen.addresses.add(str(addr))
    return seen


def port_ips(port: dict[str, Any]) -> set[str]:
    return {str(ipaddress.ip_address(f["ip_address"])) for f in port["fixed_ips"]}


def ping(container: str, address: str) -> subprocess.CompletedProcess[str]:
    """Three echo requests with a deadline; busybox exits 0 once any reply came back."""
    family = "-6" if ipaddress.ip_address(address).version == 6 else "-4"
    return run(
        [DOCKER, "exec", container, "ping", family, "-c", "3", "-w", "15", address], check=False
    )


def side_by_side(*calls: Callable[[], T]) -> list[T]:
    """Each call's result, in order, the calls made at once: for traffic checks that do not
    depend on each other, where each waits seconds (a ping for its three replies)."""
    with ThreadPoolExecutor(max_workers=len(calls) or 1) as pool:
        return list(pool.map(lambda call: call(), calls))


def ping_all(jobs: list[tuple[str, str]]) -> list[subprocess.CompletedProcess[str]]:
    """:func:`ping` for each (container, address), side by side, results in order."""
    return side_by_side(*(functools.partial(ping, *job) for job in jobs))


class DockerEnv:
    """Docker networks, containers and other resources one test made, removed at teardown.

    Every name starts with the test's own ``e2e-<random>`` prefix, so parallel runs and other
    engineers' resources are never touched. ``driver`` names Kuryr's drivers in Docker:
    ``kuryr`` for the bare daemon, ``kuryr:latest`` for the managed plugin.
    """

    def __init__(self, driver: str = "kuryr") -> None:
        self.prefix = unique_name()
        self.driver = driver
        self._containers: list[str] = []
        self._networks: list[str] = []
        self._deferred: list[Callable[[], object]] = []
        self._count = 0

    def name(self, kind: str) -> str:
        self._count += 1
        return f"{self.prefix}-{kind}{self._count}"

    def network(self, *args: str, name: str | None = None) -> str:
        """``docker network create -d DRIVER ARGS NAME``; returns the name."""
        name = name or self.name("net")
        self._networks.append(name)
        docker("network", "create", "-d", self.driver, *args, name)
        return name

    def kuryr_ipam(self) -> tuple[str, str]:
        """The arguments that make a network use Kuryr's IPAM."""
        return ("--ipam-driver", self.driver)

    def container(self, network: str, *args: str, cmd: tuple[str, ...] = ("sleep", "3600")) -> str:
        """``docker run -d --name NAME --net NETWORK ARGS kuryr/busybox CMD``; returns the name."""
        name = self.name("c")
        self._containers.append(name)
        docker("run", "-d", "--name", name, "--net", network, *args, IMAGE, *cmd)
        return name

    def remove_container(self, name: str) -> None:
        docker("rm", "-f", name)
        self._containers.remove(name)

    def remove_network(self, name: str, wait: bool = True) -> str:
        """``docker network rm``, and (``wait``) the daemon's removal from Neutron it leaves
        running in the background waited for (tests.removals_wait); returns the Docker id."""
        docker_id = docker_network_id(name)
        docker("network", "rm", name)
        self._networks.remove(name)
        if wait:
            wait_removed(stack_admin_socket(), [docker_id])
        return docker_id

    def defer(self, cleanup: Callable[[], object]) -> None:
        """Run ``cleanup`` at teardown, after containers and networks are gone (LIFO)."""
        self._deferred.append(cleanup)

    def close(self) -> None:
        run_cleanups(
            [
                *(lambda c=c: docker("rm", "-f", c, check=False) for c in self._containers),
                *(lambda n=n: self._rm_network(n) for n in reversed(self._networks)),
                *reversed(self._deferred),
            ]
        )

    @staticmethod
    def _rm_network(name: str) -> None:
        proc = run([DOCKER, "network", "rm", name], check=False)
        if proc.returncode != 0 and "no such network" not in proc.stderr.lower():
            raise CommandError(f"docker network rm {name}: {proc.stderr.strip()}")
