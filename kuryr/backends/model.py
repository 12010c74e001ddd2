"""Typed views of the Neutron resources the domain works with (pure)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from kuryr import naming

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    cidr: IPNetwork
    gateway_ip: str | None
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    subnetpool_id: str | None = None
    name: str = ""

    @property
    def version(self) -> int:
        return self.cidr.version

    @classmethod
    def from_neutron(cls, s: dict[str, Any]) -> Subnet:
        return cls(
            id=s["id"],
            network_id=s["network_id"],
            cidr=ipaddress.ip_network(s["cidr"]),
            gateway_ip=s.get("gateway_ip") or None,
            host_routes=tuple((r["destination"], r["nexthop"]) for r in s.get("host_routes") or []),
            subnetpool_id=s.get("subnetpool_id") or None,
            name=s.get("name") or "",
        )


@dataclass
class Network:
    docker_id: str
    neutron_id: str
    mtu: int
    tags: list[str]
    subnets: list[Subnet] = field(default_factory=list)

    @property
    def adopted(self) -> bool:
        return naming.is_adopted_network(self.tags)

    @property
    def internal(self) -> bool:
        return naming.TAG_INTERNAL_NET in self.tags

    def subnet_for(self, address: str) -> Subnet | None:
        ip = ipaddress.ip_address(address)
        return next((s for s in self.subnets if ip in s.cidr), None)


def subnet_of(inner: IPNetwork, outer: IPNetwork) -> bool:
    """``inner`` lies inside ``outer`` (False across IP versions, where ipaddress raises)."""
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def first_host(cidr: IPNetwork) -> str:
    """The address Docker's own IPAM would pick as gateway: the first usable host."""
    if cidr.num_addresses == 1:
        return str(cidr.network_address)
    return str(cidr.network_address + 1)


def allocation_pools(cidr: IPNetwork, excluded: set[str]) -> list[dict[str, str]]:
    """Neutron allocation pools covering the subnet's hosts minus ``excluded``.

    Docker reserves the gateway and ``--aux-address`` entries itself; keeping them out of the
    pools stops Neutron from handing them to a container.
    """
    # Neutron refuses the subnet's network and broadcast addresses (IPv4) and the
    # subnet-router anycast address (IPv6) in allocation pools.
    start = int(cidr.network_address) + 1
    end = int(cidr.broadcast_address) - (1 if cidr.version == 4 else 0)
    holes = sorted(
        int(ipaddress.ip_address(a)) for a in excluded if ipaddress.ip_address(a) in cidr
    )
    pools: list[dict[str, str]] = []
    cursor = start
    for hole in holes:
        if hole < cursor or hole > end:
            continue
        if hole > cursor:
            pools.append(_range(cidr, cursor, hole - 1))
        cursor = hole + 1
    if cursor <= end:
        pools.append(_range(cidr, cursor, end))
    return pools


def _range(cidr: IPNetwork, first: int, last: int) -> dict[str, str]:
    make = ipaddress.IPv4Address if cidr.version == 4 else ipaddress.IPv6Address
    return {"start": str(make(first)), "end": str(make(last))}
