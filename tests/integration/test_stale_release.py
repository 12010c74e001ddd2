"""A ReleaseAddress that arrives after its address went to the next container.

dockerd releases a stopped container's address after its DeleteEndpoint; under a burst the
same address may be handed to a starting container in between (the released port goes
straight to a waiting start). That late ReleaseAddress belongs to the stopped container and
must not take the new holder's port: the crash test saw two containers on one address.
"""

from __future__ import annotations

import pytest

from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import create, create_request, domain, endpoints, no_revoke

pytestmark = pytest.mark.stack


async def test_late_release_of_a_reused_address_keeps_the_new_holder(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did, first, second = d.new_id(), d.new_id(), d.new_id()
        pool = await d.ipam.request_pool(p.RequestPoolRequest())
        network = await d.networks.create(create_request(did, pool.pool, ""))
        eps = endpoints(d)
        addr = await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
        ip = addr.address.partition("/")[0]
        holding = {"network_id": network.neutron_id, "fixed_ips": [f"ip_address={ip}"]}
        await eps.create(create(did, first, addr.address))
        await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=first), no_revoke)

        again = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, address=ip)
        )
        assert again.address == addr.address
        [reserved] = await d.neutron.query("ports", holding)
        # The first container's ReleaseAddress, late.
        await d.ipam.release_address(p.ReleaseAddressRequest(pool_id=pool.pool_id, address=ip))

        await eps.create(create(did, second, addr.address))
        await eps.flush()
        [port] = await d.neutron.query("ports", holding)
        assert (port["id"], port["device_id"]) == (reserved["id"], second)
        await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=second), no_revoke)
        await d.ipam.release_address(p.ReleaseAddressRequest(pool_id=pool.pool_id, address=ip))
        assert await d.neutron.query("ports", holding) == []
        await d.networks.delete(did)
