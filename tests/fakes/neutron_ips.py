"""Addresses as the in-memory Neutron hands them out: fixed IPs from a subnet's allocation
pools (at random, as Neutron picks them), CIDRs from a subnetpool's prefixes (the lowest free
block), MACs under ``fa:16:3e``."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from kuryr.backends.model import IPNetwork, subnet_of
from kuryr.backends.neutron_api import Resource

MAC_PREFIX = "fa:16:3e"
# Random picks before a free address is looked for in order (a nearly full subnet).
_RANDOM_TRIES = 32


class Refused(Exception):
    """What Neutron answers with an error: HTTP status, NeutronError type, message."""

    def __init__(self, status: int, neutron_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.neutron_type = neutron_type
        self.message = message


def pick_ip(subnet: Resource, used: set[str], rng: random.Random) -> str:
    """A free address of the subnet's allocation pools."""
    ranges = [
        (int(ipaddress.ip_address(a["start"])), int(ipaddress.ip_address(a["end"])))
        for a in subnet.get("allocation_pools") or []
    ]
    make = ipaddress.IPv4Address if subnet["ip_version"] == 4 else ipaddress.IPv6Address
    if ranges:
        for _ in range(_RANDOM_TRIES):
            first, last = rng.choice(ranges)
            candidate = str(make(rng.randint(first, last)))
            if candidate not in used:
                return candidate
        for first, last in ranges:
            for value in range(first, last + 1):
                if str(make(value)) not in used:
                    return str(make(value))
    raise Refused(
        409,
        "IpAddressGenerationFailure",
        f"No more IP addresses available on network {subnet['network_id']}.",
    )


def first_free_ip(subnet: Resource, used: set[str]) -> str | None:
    """The lowest free address of the allocation pools (where Neutron puts the metadata port)."""
    make = ipaddress.IPv4Address if subnet["ip_version"] == 4 else ipaddress.IPv6Address
    for pool in subnet.get("allocation_pools") or []:
        first = int(ipaddress.ip_address(pool["start"]))
        last = int(ipaddress.ip_address(pool["end"]))
        for value in range(first, min(last, first + 4096) + 1):
            if str(make(value)) not in used:
                return str(make(value))
    return None


def check_ip(subnet: Resource, address: str, used: set[str]) -> str:
    """A requested fixed IP: inside the subnet and held by no other port."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise Refused(400, "InvalidInput", f"Invalid input for operation: '{address}'") from None
    if ip not in ipaddress.ip_network(subnet["cidr"]):
        raise Refused(
            400,
            "InvalidIpForSubnet",
            f"IP address {address} is not a valid IP for the specified subnet.",
        )
    if str(ip) in used:
        raise Refused(
            409,
            "IpAddressAlreadyAllocated",
            f"IP address {ip} already allocated in subnet {subnet['id']}",
        )
    return str(ip)


def allocate_cidr(
    subnetpool: Resource, wanted: IPNetwork | None, prefixlen: int, taken: Iterable[IPNetwork]
) -> IPNetwork:
    """A CIDR of the subnetpool: ``wanted`` when it is inside a prefix and overlaps nothing
    allocated, else the lowest free block of ``prefixlen``. Neutron answers 500 when it cannot."""
    taken = list(taken)
    prefixes = [ipaddress.ip_network(p) for p in subnetpool.get("prefixes") or []]
    if wanted is not None:
        inside = any(subnet_of(wanted, p) for p in prefixes)
        if inside and not any(wanted.overlaps(t) for t in taken):
            return wanted
    else:
        for prefix in prefixes:
            if prefix.prefixlen > prefixlen:
                continue
            for block in prefix.subnets(new_prefix=prefixlen):
                if not any(block.overlaps(t) for t in taken):
                    return block
    raise Refused(
        500,
        "SubnetAllocationError",
        "Failed to allocate subnet: Cannot allocate requested subnet from the available set "
        "of prefixes.",
    )


def new_mac(used: set[str], rng: random.Random) -> str:
    while True:
        tail = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        mac = f"{MAC_PREFIX}:{tail}"
        if mac not in used:
            return mac
