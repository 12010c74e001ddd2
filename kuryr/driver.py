"""Composition root of the domain: config in, Docker's two driver interfaces out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kuryr import metrics
from kuryr import protocol as p
from kuryr.api import IpamDriver, NetworkDriver
from kuryr.config import Config
from kuryr.endpoints import Endpoints
from kuryr.ipam import Ipam, PortAllocator
from kuryr.networks import Networks
from kuryr.neutron import connect
from kuryr.security_groups import SecurityGroups


class KuryrNetworkDriver(NetworkDriver):
    """Thin handlers: each request goes to one domain object."""

    def __init__(
        self, networks: Networks, endpoints: Endpoints, security_groups: SecurityGroups
    ) -> None:
        self.networks = networks
        self.endpoints = endpoints
        self.security_groups = security_groups

    async def create_network(self, req: p.CreateNetworkRequest) -> None:
        await self.networks.create(req)

    async def delete_network(self, req: p.NetworkRequest) -> None:
        await self.networks.delete(req.network_id)

    async def create_endpoint(self, req: p.CreateEndpointRequest) -> p.CreateEndpointResponse:
        return await self.endpoints.create(req)

    async def endpoint_oper_info(self, req: p.EndpointRequest) -> p.EndpointOperInfoResponse:
        endpoint = await self.endpoints.get(req.endpoint_id, req.network_id)
        return self.endpoints.oper_info(endpoint)

    async def delete_endpoint(self, req: p.EndpointRequest) -> None:
        await self.endpoints.delete(req, self.security_groups.revoke)

    async def join(self, req: p.JoinRequest) -> p.JoinResponse:
        return await self.endpoints.join(req)

    async def leave(self, req: p.EndpointRequest) -> None:
        await self.endpoints.leave(req)

    async def program_external_connectivity(self, req: p.ExternalConnectivityRequest) -> None:
        endpoint = await self.endpoints.get(req.endpoint_id, req.network_id)
        await self.security_groups.program(endpoint, req.options)

    async def revoke_external_connectivity(self, req: p.EndpointRequest) -> None:
        endpoint = await self.endpoints.find(req.endpoint_id, req.network_id)
        if endpoint is not None:
            await self.security_groups.revoke(endpoint)


async def build(
    config: Config,
) -> tuple[NetworkDriver, IpamDriver, Callable[[], Awaitable[None]]]:
    from kuryr.binding import registry  # deferred: pulls in OVSDB and netlink clients

    binders = await registry.load(config.binding)
    try:
        neutron = connect(config.neutron, metrics.neutron_call)
    except BaseException:
        await binders.close()
        raise
    ipam = Ipam(
        neutron,
        PortAllocator(neutron, binders.host),
        config.neutron.default_subnetpool_v4,
        config.neutron.default_subnetpool_v6,
    )
    networks = Networks(neutron, ipam, binders.host, config.neutron.enable_dhcp)
    endpoints = Endpoints(
        neutron,
        networks,
        ipam,
        binders,
        config.neutron.vif_plugging_timeout,
        config.binding.veth_dst_prefix,
    )
    driver = KuryrNetworkDriver(networks, endpoints, SecurityGroups(neutron))

    async def close() -> None:
        await endpoints.drain()
        await binders.close()

    return driver, ipam, close
