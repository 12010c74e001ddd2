"""What the multi-host end-to-end tests share: the hosts of ``kuryr stack up --hosts 3``, a
Docker CLI per host, resources made on several hosts (removed at teardown), Neutron
networks that span the hosts, and VM-like namespaces plugged on any host's br-int.

Traffic checks: ping (v4 or v6) and TCP as an HTTP download whose md5 must match."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import secrets
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.helpers import DOCKER, IMAGE, Neutron, run, run_cleanups, wait_for
from tests.removals_wait import stack_admin_socket, wait_removed

PAGE_BYTES = 1_000_000
# An httpd serving /www/f (random bytes) and /www/sum (their md5).
SERVER = (
    "sh",
    "-c",
    f"mkdir -p /www && head -c {PAGE_BYTES} /dev/urandom > /www/f"
    " && md5sum /www/f | cut -d' ' -f1 > /www/sum && exec httpd -f -p 80 -h /www",
)


@dataclass(frozen=True)
class Host:
    """One host of the stack as ``kuryr stack hosts --json`` describes it."""

    name: str
    chassis: str
    docker_host: str
    namespace: str  # empty for the machine's own host
    ovs_db: str
    admin_socket: Path  # its daemon's (tests.removals_wait)

    def docker(self, *args: str, check: bool = True, timeout: float = 180.0) -> str:
        return run(
            [DOCKER, "-H", self.docker_host, *args], check=check, timeout=timeout
        ).stdout.strip()

    def remove_network(self, name: str) -> None:
        """``docker network rm``, and the daemon's removal from Neutron it leaves running in
        the background waited for."""
        docker_id = self.docker("network", "inspect", "-f", "{{.Id}}", name)
        self.docker("network", "rm", name)
        wait_removed(self.admin_socket, [docker_id])

    def vsctl(self, *args: str) -> str:
        return run(["ovs-vsctl", f"--db={self.ovs_db}", *args]).stdout.strip()

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        netns = ["-n", self.namespace] if self.namespace else []
        return run(["ip", *netns, *args], check=check)


def hosts_from(described: list[dict[str, Any]]) -> list[Host]:
    """The machine's host first, then h2 … hN."""
    return [
        Host(
            name=str(row["name"]),
            chassis=str(row["chassis"]),
            docker_host=str(row["docker_host"]),
            namespace=str(row["namespace"]),
            ovs_db=str(row.get("ovs_db") or "unix:/var/run/openvswitch/db.sock"),
            admin_socket=Path(str(row.get("admin_socket") or stack_admin_socket())),
        )
        for row in described
    ]


@dataclass(frozen=True)
class Container:
    host: Host
    name: str

    def exec(self, *argv: str, check: bool = True, timeout: float = 60.0) -> str:
        return self.host.docker("exec", self.name, *argv, check=check, timeout=timeout)

    def attachment(self, network: str) -> dict[str, Any]:
        nets = json.loads(
            self.host.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", self.name)
        )
        attached: dict[str, Any] = nets[network]
        return attached

    def address(self, network: str, version: int) -> str:
        return str(self.attachment(network)["GlobalIPv6Address" if version == 6 else "IPAddress"])

    def endpoint_id(self, network: str) -> str:
        return str(self.attachment(network)["EndpointID"])

    def pings(self, address: str) -> bool:
        family = "-6" if ipaddress.ip_address(address).version == 6 else "-4"
        done = run(
            [DOCKER, "-H", self.host.docker_host, "exec", self.name,
             "ping", family, "-c", "3", "-w", "15", address],
            check=False,
        )  # fmt: skip
        return done.returncode == 0

    def get(self, address: str, path: str) -> str | None:
        """The body of http://address/path as this container fetches it; None on failure."""
        host = f"[{address}]" if ":" in address else address
        done = run(
            [DOCKER, "-H", self.host.docker_host, "exec", self.name,
             "timeout", "8", "wget", "-q", "-O", "-", f"http://{host}{path}"],
            check=False,
        )  # fmt: skip
        return done.stdout.strip() if done.returncode == 0 else None

    def md5_from(self, address: str) -> str | None:
        """md5 of http://address/f as this container downloads it; None when it fails."""
        url = f"http://[{address}]/f" if ":" in address else f"http://{address}/f"
        target = f"/tmp/dl-{secrets.token_hex(4)}"
        script = f"timeout 20 wget -q -O {target} {url} && md5sum {target} && rm {target}"
        done = run(
            [DOCKER, "-H", self.host.docker_host, "exec", self.name, "sh", "-c", script],
            check=False,
        )
        words = done.stdout.split()
        return words[0] if done.returncode == 0 and words else None

    def served_md5(self) -> str:
        return wait_for(lambda: self.exec("cat", "/www/sum", check=False) or None, "/www/sum")


def failed_pings(containers: list[Container], network: str, version: int) -> list[str]:
    """Every ordered pair of ``containers`` pings on ``network``; "a->b" (host names) for each
    pair that failed. Side by side: each ping waits seconds for its replies, and none depends
    on another."""
    addresses = [c.address(network, version) for c in containers]
    pairs = list(itertools.permutations(range(len(containers)), 2))
    with ThreadPoolExecutor(max_workers=len(pairs) or 1) as pool:
        pinged = list(pool.map(lambda pair: containers[pair[0]].pings(addresses[pair[1]]), pairs))
    return [
        f"{containers[a].host.name}->{containers[b].host.name}"
        for (a, b), ok in zip(pairs, pinged, strict=True)
        if not ok
    ]


class HostsEnv:
    """Containers, networks and other resources one test made on several hosts, removed at
    teardown (containers, then networks, then deferred cleanups, last first)."""

    def __init__(self) -> None:
        self.prefix = f"mh-{secrets.token_hex(4)}"
        self._containers: list[Container] = []
        self._networks: list[tuple[Host, str]] = []
        self._deferred: list[Callable[[], object]] = []
        self._count = 0

    def name(self, kind: str) -> str:
        self._count += 1
        return f"{self.prefix}-{kind}{self._count}"

    def network(self, host: Host, name: str, *args: str, ipam: str = "kuryr") -> str:
        """``ipam``: ``kuryr``, or ``docker`` (dockerd's own, ``--ipam-driver`` not given)."""
        self._networks.append((host, name))
        driver = ("--ipam-driver", "kuryr") if ipam == "kuryr" else ()
        host.docker("network", "create", "-d", "kuryr", *driver, *args, name)
        return name

    def container(
        self, host: Host, network: str, *args: str, cmd: tuple[str, ...] = SERVER
    ) -> Container:
        made = Container(host, self.name(f"{host.name}-c"))
        self._containers.append(made)
        host.docker("run", "-d", "--name", made.name, "--net", network, *args, IMAGE, *cmd)
        return made

    @property
    def containers(self) -> list[Container]:
        """Those made and not removed yet."""
        return list(self._containers)

    def remove_container(self, container: Container) -> None:
        container.host.docker("rm", "-f", container.name)
        self._containers.remove(container)

    def remove_network(self, host: Host, name: str) -> None:
        host.remove_network(name)
        self._networks.remove((host, name))

    def defer(self, cleanup: Callable[[], object]) -> None:
        self._deferred.append(cleanup)

    def close(self) -> None:
        run_cleanups(
            [
                *(
                    lambda c=c: c.host.docker("rm", "-f", c.name, check=False)
                    for c in self._containers
                ),
                *(lambda h=h, n=n: _rm_network(h, n) for h, n in reversed(self._networks)),
                *reversed(self._deferred),
            ]
        )


def _rm_network(host: Host, name: str) -> None:
    done = run([DOCKER, "-H", host.docker_host, "network", "rm", name], check=False)
    if done.returncode != 0 and "no such network" not in done.stderr.lower():
        raise AssertionError(f"docker -H {host.docker_host} network rm {name}: {done.stderr}")


@dataclass
class Span:
    """A Neutron network made outside Docker and a Docker network of the same name on each
    host that maps onto it (``-o neutron.net.name``)."""

    network: dict[str, Any]
    docker_name: str
    cidrs: dict[int, str] = field(default_factory=dict)


def random_v4(first_octets: str) -> str:
    return f"{first_octets}.{secrets.randbelow(250) + 1}.0/24"


def random_v6() -> str:
    return str(ipaddress.IPv6Network((0xFD6D << 112 | secrets.randbits(48) << 64, 64)))


def span(env: HostsEnv, neutron: Neutron, hosts: list[Host], dual_stack: bool = True) -> Span:
    """One Neutron network with a v4 (and v6) subnet, joined by a Docker network on each host
    with the same ``--subnet``s and ``-o neutron.net.name``."""
    versions = (4, 6) if dual_stack else (4,)
    made = neutron_span(env, neutron, versions)
    args = [a for v in versions for a in ("--subnet", made.cidrs[v])]
    if dual_stack:
        args.append("--ipv6")
    for host in hosts:
        env.network(host, made.docker_name, *args, "-o", f"neutron.net.name={made.network['name']}")
    return made


def neutron_span(env: HostsEnv, neutron: Neutron, versions: tuple[int, ...]) -> Span:
    """The Neutron side of a :func:`span`: a network with a random subnet of each version in
    ``versions``, removed at teardown (with the ``kuryrPool-*`` Kuryr's IPAM may make for
    each); the Docker networks are the caller's."""
    network = neutron.create("networks", name=env.name("net"))
    env.defer(lambda: delete_network(neutron, network["id"]))
    made = Span(network, env.name("docker-net"))
    for version in versions:
        cidr = random_v4("10.64") if version == 4 else random_v6()
        neutron.create(
            "subnets",
            name=env.name(f"subnet{version}"),
            network_id=network["id"],
            ip_version=version,
            cidr=cidr,
        )
        made.cidrs[version] = cidr
        env.defer(functools.partial(delete_kuryr_pool, neutron, cidr))
    return made


def delete_network(neutron: Neutron, network_id: str) -> None:
    """Once the hosts' daemons have given back their ports (they release the pool ports of
    a removed Docker network in the background), delete the network."""

    def free() -> bool:
        ports = neutron.find("ports", network_id=network_id)
        return all(p["device_owner"] == "network:distributed" for p in ports)

    wait_for(free, f"the Kuryr ports of network {network_id} to go")
    neutron.delete("networks", network_id)


def delete_kuryr_pool(neutron: Neutron, cidr: str) -> None:
    """The ``kuryrPool-<cidr>`` subnetpool Kuryr's IPAM made for a CIDR outside its pools."""
    for pool in neutron.find("subnetpools", name=f"kuryrPool-{ipaddress.ip_network(cidr)}"):
        neutron.delete("subnetpools", pool["id"])


@dataclass(frozen=True)
class Vm:
    """A VM-like namespace on a Neutron port, plugged by hand into a host's br-int."""

    namespace: str
    addresses: dict[int, str]

    def pings(self, address: str) -> bool:
        family = "-6" if ipaddress.ip_address(address).version == 6 else "-4"
        argv = [
            "ip",
            "netns",
            "exec",
            self.namespace,
            "ping",
            family,
            "-c",
            "3",
            "-w",
            "15",
            address,
        ]
        return run(argv, check=False).returncode == 0

    def fetch(self, address: str, path: str = "/f", timeout_s: int = 8) -> bytes | None:
        url = f"http://[{address}]{path}" if ":" in address else f"http://{address}{path}"
        argv = ["ip", "netns", "exec", self.namespace,
                "timeout", str(timeout_s), "busybox", "wget", "-q", "-O", "-", url]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s + 5, check=False)
        return done.stdout if done.returncode == 0 else None


def plug_vm(
    env: HostsEnv,
    neutron: Neutron,
    host: Host,
    network: dict[str, Any],
    security_groups: list[str] | None = None,
) -> Vm:
    """A port bound to ``host`` (default group unless ``security_groups``), and a namespace
    plugged into that host's br-int the way os-vif plugs a VM: veth, iface-id, MAC, its
    addresses. TX checksum offload is off in it, as Kuryr's option does for containers."""
    extra = {"security_groups": security_groups} if security_groups is not None else {}
    port = neutron.create(
        "ports",
        name=env.name("vm-port"),
        network_id=network["id"],
        device_owner="e2e:vm",
        **{"binding:host_id": host.chassis},
        **extra,
    )
    env.defer(lambda: neutron.delete("ports", port["id"]))
    namespace = env.name("vm")
    suffix = secrets.token_hex(4)
    host_end, vm_end = f"mhv{suffix}", f"mhe{suffix}"
    run(["ip", "netns", "add", namespace])
    env.defer(lambda: run(["ip", "netns", "del", namespace], check=False))
    # Made in the host's namespace, its VM end straight in the VM's.
    host.ip("link", "add", host_end, "mtu", str(network["mtu"]), "type", "veth", "peer", "name",
            vm_end, "mtu", str(network["mtu"]), "netns", namespace)  # fmt: skip
    env.defer(lambda: host.ip("link", "del", host_end, check=False))
    in_vm = ["ip", "-n", namespace]
    run([*in_vm, "link", "set", vm_end, "address", port["mac_address"]])
    addresses: dict[int, str] = {}
    for fixed in port["fixed_ips"]:
        subnet = neutron.show("subnets", fixed["subnet_id"])
        assert subnet is not None
        address = ipaddress.ip_interface(f"{fixed['ip_address']}/{subnet['cidr'].split('/')[1]}")
        nodad = ["nodad"] if address.version == 6 else []
        run([*in_vm, "addr", "add", str(address), "dev", vm_end, *nodad])
        addresses[address.version] = str(address.ip)
    run([*in_vm, "link", "set", vm_end, "up"])
    run([*in_vm, "link", "set", "lo", "up"])
    run(["ip", "netns", "exec", namespace, "ethtool", "-K", vm_end, "tx", "off"])
    host.ip("link", "set", host_end, "up")
    host.vsctl("add-port", "br-int", host_end, "--", "set", "Interface", host_end,
               f"external_ids:iface-id={port['id']}",
               f"external_ids:attached-mac={port['mac_address']}",
               "external_ids:iface-status=active")  # fmt: skip
    env.defer(lambda: host.vsctl("--if-exists", "del-port", "br-int", host_end))
    # The whole column: asking for the key alone fails until ovn-controller has set it.
    wait_for(
        lambda: 'ovn-installed="true"' in host.vsctl("get", "Interface", host_end, "external_ids"),
        f"ovn-controller of {host.name} to install {host_end}",
    )
    neutron.wait_active(port["id"])
    return Vm(namespace, addresses)
