"""CIDRs of Docker's IPAM pools against Neutron subnetpools (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from kuryr.backends.model import IPNetwork, subnet_of
from kuryr.backends.neutron_api import Resource
from kuryr.errors import InvalidRequest


def subnet_cidr(pool: str, sub_pool: str, version: int) -> IPNetwork:
    """The CIDR of the Neutron subnet that serves RequestPool's ``pool``: with ``--ip-range``
    (``sub_pool``) the range itself, as kuryr-libnetwork makes it, so that each host's slice
    of one Docker ``--subnet`` is a subnet of its own."""
    outer = ipaddress.ip_network(pool)
    if outer.version != version:
        raise InvalidRequest(f"pool {outer} is not IPv{version}")
    if not sub_pool:
        return outer
    inner = ipaddress.ip_network(sub_pool)
    if not subnet_of(inner, outer):
        raise InvalidRequest(f"ip range {inner} is not inside {outer}")
    return inner


def first_free(candidates: Iterable[IPNetwork], taken: list[IPNetwork]) -> IPNetwork | None:
    """The first candidate overlapping nothing taken."""
    for candidate in candidates:
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    return None


def contains(subnetpool: Resource, cidr: IPNetwork) -> bool:
    """``cidr`` lies inside one of the subnetpool's prefixes."""
    return any(subnet_of(cidr, ipaddress.ip_network(p)) for p in subnetpool.get("prefixes", []))


def dedicated(subnetpool: Resource, cidr: IPNetwork) -> bool:
    """The subnetpool holds exactly ``cidr`` (its PoolID can be its bare uuid)."""
    return [ipaddress.ip_network(p) for p in subnetpool.get("prefixes", [])] == [cidr]
