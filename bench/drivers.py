"""The networks compared: each driver row of the tables, how its network is created and
which daemon (if any) makes Neutron calls for it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from bench.dockercli import PREFIX


@dataclass(frozen=True)
class Driver:
    key: str
    title: str
    # None for --net=none, which has no network to create.
    create_args: tuple[str, ...] | None
    # Whose Neutron calls the proxy counts ("kuryr", "kuryrlib"); None: no Neutron at all.
    daemon: str | None
    # Each driver's networks get their own address range, so no two ever overlap.
    octet: int
    # Length of the network's prefix: /23 holds make bench's 200 containers and their pool.
    prefix_len: int = 23

    @property
    def network(self) -> str:
        return f"{PREFIX}{self.key}"

    def net_arg(self, network: str | None = None) -> str:
        if self.create_args is None:
            return "--net=none"
        return f"--net={network or self.network}"

    def subnet(self, index: int = 0) -> ipaddress.IPv4Network:
        """One of the disjoint subnets of ``prefix_len`` in the driver's /16 (128 of /23),
        picked by ``index``."""
        third_octets = 2 ** (24 - self.prefix_len)
        third = (index * third_octets) % 256
        return ipaddress.IPv4Network(f"10.{self.octet}.{third}.0/{self.prefix_len}")

    def create_command(self, network: str, index: int = 0) -> list[str] | None:
        """``docker network create`` argv for a network of this driver on ``subnet(index)``,
        its first address the gateway."""
        if self.create_args is None:
            return None
        subnet = self.subnet(index)
        return [
            "network",
            "create",
            *self.create_args,
            "--subnet",
            str(subnet),
            "--gateway",
            str(subnet.network_address + 1),
            network,
        ]


NONE = Driver("none", "--net=none", None, None, 0)
BRIDGE = Driver("bridge", "Docker bridge (user-defined)", ("-d", "bridge"), None, 241)
KURYR = Driver(
    "kuryr", "Kuryr, Kuryr IPAM", ("-d", "kuryr", "--ipam-driver", "kuryr"), "kuryr", 242
)
KURYR_DOCKER_IPAM = Driver("kuryr-dipam", "Kuryr, Docker IPAM", ("-d", "kuryr"), "kuryr", 243)
KURYRLIB = Driver(
    "kuryrlib",
    "kuryr-libnetwork 18.0.0",
    ("-d", "kuryrlib", "--ipam-driver", "kuryrlib"),
    "kuryrlib",
    244,
)

ALL = (NONE, BRIDGE, KURYR, KURYR_DOCKER_IPAM, KURYRLIB)
