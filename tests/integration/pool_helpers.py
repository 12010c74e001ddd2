"""The domain as ``kuryr serve`` builds it (kuryr.driver.build, a private state directory) on
the real Neutron, with Kuryr-IPAM networks of its own, for the pool tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kuryr.backends.model import Network
from kuryr.backends.neutron import Neutron, connect
from kuryr.config import BindingConfig, Config, NeutronConfig, PoolConfig
from kuryr.domain.ports.pools import PortPool
from kuryr.driver import KuryrNetworkDriver, build
from kuryr.plugin import protocol as p
from kuryr.plugin.api import IpamDriver
from tests.conftest import StackFacts
from tests.integration.domain_helpers import cleanup, create_request, docker_id, neutron_client

GATEWAY = {p.OPT_REQUEST_ADDRESS_TYPE: p.REQUEST_ADDRESS_TYPE_GATEWAY}
FILL_TIMEOUT = 300.0


@dataclass
class Kuryr:
    driver: KuryrNetworkDriver
    ipam: IpamDriver
    neutron: Neutron  # the domain's client: its calls are counted
    docker_ids: list[str] = field(default_factory=list)

    async def network(self, cidr: str) -> tuple[str, str]:
        """A Kuryr-IPAM network on ``cidr``: (Docker network id, PoolID)."""
        did = docker_id()
        self.docker_ids.append(did)
        pool = await self.ipam.request_pool(p.RequestPoolRequest.model_validate({"Pool": cidr}))
        gw = await self.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, options=GATEWAY)
        )
        await self.driver.create_network(create_request(did, pool.pool, gw.address))
        return did, pool.pool_id

    async def request_address(self, pool_id: str) -> str:
        answer = await self.ipam.request_address(p.RequestAddressRequest(pool_id=pool_id))
        return answer.address.split("/")[0]

    async def release_address(self, pool_id: str, address: str) -> None:
        await self.ipam.release_address(
            p.ReleaseAddressRequest.model_validate({"PoolID": pool_id, "Address": address})
        )

    async def network_of(self, did: str) -> Network:
        """The Docker network's Neutron network and subnets, as the domain knows them."""
        return await self.driver.networks.get(did)

    async def pool_of(self, did: str) -> PortPool:
        network = await self.network_of(did)
        pool = self.driver.pools.pool(network.subnets[0].id)
        assert pool is not None, "the network's subnet has no pool"
        return pool

    async def filled(self, did: str, free: int) -> PortPool:
        """The network's pool once it holds ``free`` ports and no refill runs; started as a
        first container start would start it."""
        pool = await self.pool_of(did)
        network = await self.network_of(did)
        self.driver.pools.ensure(network.subnets[0], pool.row.mode)
        deadline = time.monotonic() + FILL_TIMEOUT
        while len(pool.free) < free or pool.refill is not None:
            assert time.monotonic() < deadline, f"pool never reached {free}: {pool.summary()}"
            await asyncio.sleep(0.2)
        return pool


@asynccontextmanager
async def kuryr(
    stack: StackFacts,
    state_dir: Path,
    pool: PoolConfig,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Kuryr]:
    """The domain on the stack's Neutron; ``clock`` times the pools' demand."""
    config = Config(
        state_dir=state_dir,
        neutron=NeutronConfig(auth_type="none", endpoint=stack.neutron_url, timeout=60.0),
        binding=BindingConfig(host=stack.chassis_hostname),
        pool=pool,
    )
    neutron = connect(config.neutron)
    domain, close = await build(config, neutron, clock=clock)
    assert isinstance(domain.network, KuryrNetworkDriver)
    try:
        yield Kuryr(domain.network, domain.ipam, neutron)
    finally:
        await close()


@asynccontextmanager
async def kuryr_network(
    stack: StackFacts,
    state_dir: Path,
    pool: PoolConfig,
    cidr: str,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[tuple[Kuryr, str, str]]:
    """The domain with one Kuryr-IPAM network on ``cidr``: (Kuryr, Docker network id,
    PoolID). Whatever the test leaves of the network is removed from Neutron afterwards."""
    ids: list[str] = []
    try:
        async with kuryr(stack, state_dir, pool, clock) as k:
            ids = k.docker_ids
            did, pool_id = await k.network(cidr)
            yield k, did, pool_id
    finally:
        await cleanup(neutron_client(stack.neutron_url), ids)


async def kuryr_ports(stack: StackFacts, network_id: str) -> list[dict[str, object]]:
    neutron = neutron_client(stack.neutron_url)
    return await neutron.query("ports", {"network_id": network_id, "device_owner": "compute:kuryr"})
