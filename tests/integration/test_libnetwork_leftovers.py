"""Ports kuryr-libnetwork 18 leaves on a Docker-IPAM network after a host switched to Kuryr.

Its DeleteEndpoint strips the endpoint's id tags and keeps the port (device_id and the name
``<endpoint id>-port`` stay), and a start that failed leaves one the same way, its VIF still
plugged. Kuryr takes such a port for the container Docker gives its address (unplugging that
VIF first), and DeleteNetwork deletes the others; a port whose endpoint still carries its
tags is never taken.
"""

from __future__ import annotations

import pytest

from kuryr import naming
from kuryr.backends.binding.registry import Binders
from kuryr.backends.model import Network
from kuryr.domain.ports.port import Port
from kuryr.errors import Conflict
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import (
    Domain,
    create,
    create_request,
    domain,
    endpoints,
    no_revoke,
)
from tests.integration.host_binders import host_binders_fixture

pytestmark = pytest.mark.stack
host_binders = host_binders_fixture()

CIDR = "172.31.247.0/24"


async def libnetwork_port(d: Domain, network: Network, ip: str, in_use: bool = False) -> str:
    """A port shaped as kuryr-libnetwork's CreateEndpoint makes it on Docker's IPAM; with
    ``in_use`` its endpoint's tags are on it (its Join found it)."""
    endpoint_id = d.new_id()
    port = await d.neutron.create(
        "ports",
        {
            "name": naming.port_name(endpoint_id),
            "network_id": network.neutron_id,
            "fixed_ips": [{"subnet_id": network.subnets[0].id, "ip_address": ip}],
            "device_owner": naming.DEVICE_OWNER,
            "device_id": endpoint_id,
            "binding:host_id": d.host,
        },
    )
    if in_use:
        await d.neutron.set_tags("ports", port["id"], naming.id_tags(endpoint_id))
    return str(port["id"])


async def test_kuryr_takes_or_removes_what_kuryr_libnetwork_left(
    stack: StackFacts, host_binders: Binders
) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname, host_binders) as d:
        did, eid = d.new_id(), d.new_id()
        network = await d.networks.create(
            create_request(did, CIDR, "172.31.247.1/24", address_space="LocalDefault")
        )
        taken, left = [
            await libnetwork_port(d, network, ip) for ip in ("172.31.247.10", "172.31.247.11")
        ]
        in_use = await libnetwork_port(d, network, "172.31.247.12", in_use=True)
        ovs = host_binders.for_vif_type("ovs")
        stale = Port.from_neutron(await d.neutron.show("ports", taken) or {}).vif("", 1442)
        await ovs.plug(stale, 30.0)  # as kuryr-libnetwork's CreateEndpoint did
        eps = endpoints(d)

        await eps.create(create(did, eid, "172.31.247.10/24"))
        assert (await eps.get(eid, did)).port_id == taken
        assert not await ovs.ready(stale), "kuryr-libnetwork's VIF is still plugged"
        with pytest.raises(Conflict):
            await eps.create(create(did, d.new_id(), "172.31.247.12/24"))
        await eps.flush()
        port = await d.neutron.show("ports", taken)
        assert port is not None and port["device_id"] == eid
        assert naming.id_from_tags(port["tags"]) == eid

        await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)
        await d.neutron.delete("ports", in_use)  # its container is gone too
        await d.networks.delete(did)
        assert await d.neutron.show("ports", left) is None
        assert await d.neutron.show("networks", network.neutron_id) is None
