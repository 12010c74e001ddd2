"""A way out for the in-memory Neutron as the local stack has it (kuryr/stack/external.py):
``public`` 172.24.4.0/24 and ``kuryr-router`` with its gateway on it; Docker's ``-p`` entries;
and what ``-p`` made, as a test reads it (tests/unit/domain/test_publish_*.py)."""

from __future__ import annotations

from typing import Any

from kuryr import naming
from kuryr.backends.neutron_api import Resource
from kuryr.plugin import protocol as p
from tests.fakes.daemon import Container, Daemon, Net, default_subnetpools
from tests.fakes.neutron import FakeNeutron

ROUTER = "kuryr-router"
TCP, UDP, SCTP = 6, 17, 132


def entry(port: int, host: int, end: int | None = None, proto: int = TCP, ip: str = "") -> Any:
    """A portmap entry as dockerd 20.10 sends it (/work/shared/protocol)."""
    return {
        "Proto": proto,
        "IP": "",
        "Port": port,
        "HostIP": ip,
        "HostPort": host,
        "HostPortEnd": host if end is None else end,
    }


def options(*entries: Any) -> dict[str, Any]:
    return {p.OPT_PORTMAP: list(entries)}


def world() -> tuple[FakeNeutron, Resource]:
    """The local stack's way out: ``public`` 172.24.4.0/24 and kuryr-router's gateway on it."""
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    public = neutron.make("networks", {"name": "public", "router:external": True})
    neutron.make(
        "subnets",
        {
            "network_id": public["id"],
            "ip_version": 4,
            "cidr": "172.24.4.0/24",
            "gateway_ip": "172.24.4.1",
            "enable_dhcp": False,
        },
    )
    neutron.make(
        "routers",
        {"name": ROUTER, "external_gateway_info": {"network_id": public["id"]}},
    )
    return neutron, public


def fips(d: Daemon) -> list[Resource]:
    return d.neutron.rows("floatingips", {"tags": naming.TAG_PUBLISH})


def forwarded(d: Daemon) -> set[tuple[str, int, str, int, str]]:
    """(floating IP, external port, protocol, internal port, internal address) of them all."""
    found = set()
    for fip in d.neutron.rows("floatingips"):
        for f in d.neutron.store.forwardings.values():
            if f["floatingip_id"] == fip["id"]:
                found.add(
                    (
                        fip["floating_ip_address"],
                        f["external_port"],
                        f["protocol"],
                        f["internal_port"],
                        f["internal_ip_address"],
                    )
                )
    return found


def opened(d: Daemon, c: Container) -> set[tuple[str, int]]:
    """(protocol, port) the container's expose group lets in."""
    port = d.port_holding(c.net, c.address)
    assert port is not None
    rules = d.neutron.rows("security-group-rules", {"direction": "ingress"})
    groups = set(port["security_groups"])
    return {(r["protocol"], r["port_range_min"]) for r in rules if r["security_group_id"] in groups}


async def attached(d: Daemon) -> Net:
    return await d.kuryr_network(options={"neutron.router": ROUTER})
