"""Every handler's request sent twice gives the same answer and leaves one resource.

A realistic container lifecycle (network create, container run, container rm, network rm)
is replayed at a real daemon's socket with each request sent twice in a row, as a Docker
that retries would. After each pair the Neutron and OVS resources the sequence owns are
counted: a replay must neither create a second one nor fail on the first one's removal.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kuryr.backends.binding.base import host_ifname
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, network_tags, run, wait_for
from tests.fuzz_requests import post
from tests.integration.private_daemon import PrivateDaemon, private_daemon
from tests.removals_wait import wait_removed

pytestmark = pytest.mark.stack

GATEWAY = {"RequestAddressType": "com.docker.network.gateway"}
EXPOSED = {
    "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 8080}],
    "com.docker.network.portmap": [],
}


@dataclass
class Ids:
    network: str
    endpoint: str
    sandbox: str
    cidr: ipaddress.IPv4Network

    @property
    def gateway(self) -> str:
        return str(self.cidr.network_address + 1)

    @property
    def address(self) -> str:
        return str(self.cidr.network_address + 10)


@dataclass(frozen=True)
class Counts:
    networks: int
    subnets: int
    ports: int
    security_groups: int
    ovs_interfaces: int


def free_cidr(neutron: Neutron) -> ipaddress.IPv4Network:
    """A /24 of the default pool that no subnet uses now."""
    used = [ipaddress.IPv4Network(s["cidr"]) for s in neutron.find("subnets", ip_version="4")]
    for _ in range(200):
        candidate = ipaddress.IPv4Network(f"10.10.{secrets.randbelow(200) + 50}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise AssertionError("no free /24 in the default pool")


def ovs_interfaces_for(endpoint_id: str) -> int:
    out = run(["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"])
    rows = json.loads(out.stdout)["data"]
    return sum(1 for _, ext in rows if ["vm-uuid", endpoint_id] in ext[1])


def count(neutron: Neutron, ids: Ids) -> Counts:
    nets = neutron.find("networks", tags=",".join(network_tags(ids.network)))
    subnets = neutron.find("subnets", network_id=nets[0]["id"]) if nets else []
    ports = (
        neutron.find("ports", device_owner="compute:kuryr", network_id=nets[0]["id"])
        if nets
        else []
    )
    groups = neutron.find("security-groups", name=f"kuryr_expose_{ids.endpoint[:12]}")
    return Counts(
        len(nets), len(subnets), len(ports), len(groups), ovs_interfaces_for(ids.endpoint)
    )


@pytest.fixture
def daemon(stack: StackFacts) -> Iterator[PrivateDaemon]:
    with private_daemon() as started:
        yield started


@pytest.fixture
def ids(stack: StackFacts) -> Iterator[Ids]:
    neutron = Neutron()
    made = Ids(
        secrets.token_hex(32), secrets.token_hex(32), secrets.token_hex(32), free_cidr(neutron)
    )
    yield made
    # Whatever a failed run left: the endpoint's port, its VIF and group, then the network.
    for port in neutron.find("ports", device_id=made.endpoint):
        run(["ovs-vsctl", "--if-exists", "del-port", host_ifname(port["id"])], check=False)
        run(["ip", "link", "del", host_ifname(port["id"])], check=False)
        neutron.delete("ports", port["id"])
    for group in neutron.find("security-groups", name=f"kuryr_expose_{made.endpoint[:12]}"):
        neutron.delete("security-groups", group["id"])
    for net in neutron.find("networks", tags=",".join(network_tags(made.network))):
        for port in neutron.find("ports", network_id=net["id"], device_owner="compute:kuryr"):
            neutron.delete("ports", port["id"])
        neutron.delete("networks", net["id"])


def twice(daemon: PrivateDaemon, path: str, body: dict[str, Any]) -> Any:
    """Send the request twice; both answers must be 200 and equal. Returns the answer."""
    raw = json.dumps(body).encode()
    first = post(daemon.socket, path, raw)
    second = post(daemon.socket, path, raw)
    assert first[0] == 200, f"{path}: {first}"
    assert second == first, f"{path}: the replay answered {second}, the first call {first}"
    return first[1]


def test_every_request_twice_gives_one_resource_and_the_same_answer(
    daemon: PrivateDaemon, ids: Ids
) -> None:
    neutron = Neutron()

    def expect(**wanted: int) -> None:
        zero = dict.fromkeys(Counts.__dataclass_fields__, 0)
        assert count(neutron, ids) == Counts(**{**zero, **wanted})

    pool = twice(
        daemon,
        "/IpamDriver.RequestPool",
        {"AddressSpace": "", "Pool": str(ids.cidr), "SubPool": "", "Options": {}, "V6": False},
    )
    pool_id = pool["PoolID"]
    assert pool["Pool"] == str(ids.cidr)
    gateway = twice(
        daemon,
        "/IpamDriver.RequestAddress",
        {"PoolID": pool_id, "Address": "", "Options": GATEWAY},
    )
    assert gateway["Address"] == f"{ids.gateway}/24"
    expect()

    ipv4 = {
        "AddressSpace": "no_address_space",
        "Pool": str(ids.cidr),
        "Gateway": gateway["Address"],
        "AuxAddresses": {},
    }
    twice(
        daemon,
        "/NetworkDriver.CreateNetwork",
        {
            "NetworkID": ids.network,
            "Options": {"com.docker.network.generic": {}},
            "IPv4Data": [ipv4],
            "IPv6Data": [],
        },
    )
    expect(networks=1, subnets=1)

    address = twice(
        daemon,
        "/IpamDriver.RequestAddress",
        {"PoolID": pool_id, "Address": ids.address, "Options": {}},
    )
    assert address["Address"] == f"{ids.address}/24"
    expect(networks=1, subnets=1, ports=1)

    endpoint = {"NetworkID": ids.network, "EndpointID": ids.endpoint}
    created = twice(
        daemon,
        "/NetworkDriver.CreateEndpoint",
        {
            **endpoint,
            "Interface": {"Address": address["Address"], "AddressIPv6": "", "MacAddress": ""},
            "Options": {},
        },
    )
    assert created["Interface"]["MacAddress"].startswith("fa:16:3e:")
    expect(networks=1, subnets=1, ports=1)

    joined = twice(
        daemon,
        "/NetworkDriver.Join",
        {**endpoint, "SandboxKey": f"/var/run/docker/netns/{ids.sandbox[:12]}", "Options": {}},
    )
    assert joined["Gateway"] == ids.gateway
    expect(networks=1, subnets=1, ports=1, ovs_interfaces=1)

    twice(daemon, "/NetworkDriver.ProgramExternalConnectivity", {**endpoint, "Options": EXPOSED})
    expect(networks=1, subnets=1, ports=1, security_groups=1, ovs_interfaces=1)
    twice(daemon, "/NetworkDriver.RevokeExternalConnectivity", endpoint)
    expect(networks=1, subnets=1, ports=1, ovs_interfaces=1)

    # The VIF stays until DeleteEndpoint knows whether the port is kept
    # (kuryr.domain.ports.prewire).
    twice(daemon, "/NetworkDriver.Leave", endpoint)
    expect(networks=1, subnets=1, ports=1, ovs_interfaces=1)
    twice(daemon, "/NetworkDriver.DeleteEndpoint", endpoint)
    twice(daemon, "/IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": ids.address})
    # No pool here: the port is deleted, and its VIF unplugged in the background.
    wait_for(lambda: ovs_interfaces_for(ids.endpoint) == 0, "the VIF to be unplugged")
    expect(networks=1, subnets=1)

    twice(daemon, "/NetworkDriver.DeleteNetwork", {"NetworkID": ids.network})
    # The answer comes once the removal is journaled; it goes on in the background.
    wait_removed(daemon.admin_socket, [ids.network])
    expect()
    twice(daemon, "/IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": ids.gateway})
    twice(daemon, "/IpamDriver.ReleasePool", {"PoolID": pool_id})
    expect()
    assert "Traceback" not in daemon.log_text()
