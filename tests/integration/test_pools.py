"""Port pools against the real Neutron, through the domain as ``kuryr serve`` builds it
(kuryr.driver.build with a private state directory): no double hand-out under concurrency,
never above max, reloaded after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kuryr.backends.neutron import Neutron, connect
from kuryr.config import BindingConfig, Config, NeutronConfig, PoolConfig
from kuryr.domain.ports.pools import PortPool
from kuryr.driver import KuryrNetworkDriver, build
from kuryr.naming import POOL_TAG
from kuryr.plugin import protocol as p
from kuryr.plugin.api import IpamDriver
from tests.conftest import StackFacts
from tests.integration.domain_helpers import cleanup, create_request, docker_id, neutron_client

pytestmark = pytest.mark.stack

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

    def pool_of(self, did: str) -> PortPool:
        network = self.driver.networks._cache[did]
        pool = self.driver.pools.pool(network.subnets[0].id)
        assert pool is not None, "the network's subnet has no pool"
        return pool

    async def filled(self, did: str, free: int) -> PortPool:
        """The network's pool once it holds ``free`` ports and no refill runs; started as a
        first container start would start it."""
        pool = self.pool_of(did)
        network = self.driver.networks._cache[did]
        self.driver.pools.ensure(network.subnets[0], pool.row.mode)
        deadline = time.monotonic() + FILL_TIMEOUT
        while len(pool.free) < free or pool.refill is not None:
            assert time.monotonic() < deadline, f"pool never reached {free}: {pool.summary()}"
            await asyncio.sleep(0.2)
        return pool


@asynccontextmanager
async def kuryr(stack: StackFacts, state_dir: Path, pool: PoolConfig) -> AsyncIterator[Kuryr]:
    config = Config(
        state_dir=state_dir,
        neutron=NeutronConfig(auth_type="none", endpoint=stack.neutron_url, timeout=60.0),
        binding=BindingConfig(host=stack.chassis_hostname),
        pool=pool,
    )
    neutron = connect(config.neutron)
    domain, close = await build(config, neutron)
    assert isinstance(domain.network, KuryrNetworkDriver)
    try:
        yield Kuryr(domain.network, domain.ipam, neutron)
    finally:
        await close()


@asynccontextmanager
async def kuryr_network(
    stack: StackFacts, state_dir: Path, pool: PoolConfig, cidr: str
) -> AsyncIterator[tuple[Kuryr, str, str]]:
    """The domain with one Kuryr-IPAM network on ``cidr``: (Kuryr, Docker network id,
    PoolID). Whatever the test leaves of the network is removed from Neutron afterwards."""
    ids: list[str] = []
    try:
        async with kuryr(stack, state_dir, pool) as k:
            ids = k.docker_ids
            did, pool_id = await k.network(cidr)
            yield k, did, pool_id
    finally:
        await cleanup(neutron_client(stack.neutron_url), ids)


async def kuryr_ports(stack: StackFacts, network_id: str) -> list[dict[str, object]]:
    neutron = neutron_client(stack.neutron_url)
    return await neutron.query("ports", {"network_id": network_id, "device_owner": "compute:kuryr"})


async def test_fifty_concurrent_request_address_never_share_a_port(
    stack: StackFacts, tmp_path: Path
) -> None:
    config = PoolConfig(min=50, max=50, batch=25)
    async with kuryr_network(stack, tmp_path, config, "10.97.10.0/24") as (k, did, pool_id):
        pool = await k.filled(did, 50)
        pooled = {pp.ip: pp.port_id for pp in pool.free.values()}

        answers = await asyncio.gather(*(k.request_address(pool_id) for _ in range(50)))

        assert len(set(answers)) == 50, f"an address was handed out twice: {sorted(answers)}"
        assert set(answers) == set(pooled), "every answer is a pool port's address"
        assert len(pool.free) == 0 and len(pool.taken) == 50
        network = k.driver.networks._cache[did]
        on_network = await kuryr_ports(stack, network.neutron_id)
        # No port was made outside the pool: 50 pool ports, plus at most a refill batch
        # that the emptied pool started meanwhile.
        assert {pt["id"] for pt in on_network} >= set(pooled.values())
        for address in answers:
            await k.release_address(pool_id, address)
        await k.driver.delete_network(p.NetworkRequest(network_id=did))


async def test_pool_never_exceeds_its_max(stack: StackFacts, tmp_path: Path) -> None:
    config = PoolConfig(min=2, max=3, batch=8)
    async with kuryr_network(stack, tmp_path, config, "10.97.11.0/24") as (k, did, pool_id):
        pool = await k.filled(did, 2)
        assert len(pool.free) == 3, "one batch of 8 is capped at max = 3"
        assert await k.driver.pools.fill(pool, 10) == 0

        # Five addresses: three from the pool, two made on the spot (misses).
        held = [await k.request_address(pool_id) for _ in range(5)]
        assert len(set(held)) == 5
        for address in held:
            await k.release_address(pool_id, address)
        assert len(pool.free) + pool.creating <= 3
        await k.filled(did, 0)  # a refill the emptied pool started has ended
        await k.driver.endpoints.drain()  # the journaled deletes reach Neutron

        network = k.driver.networks._cache[did]
        on_network = await kuryr_ports(stack, network.neutron_id)
        assert len(on_network) <= 3, f"{len(on_network)} Kuryr ports left, max is 3"
        assert all(pt["device_id"] == "" for pt in on_network)
        assert all(POOL_TAG in pt["tags"] for pt in on_network)  # type: ignore[operator]
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        assert await kuryr_ports(stack, network.neutron_id) == []


async def test_pools_reload_after_restart(stack: StackFacts, tmp_path: Path) -> None:
    ids: list[str] = []
    config = PoolConfig(min=3, max=4, batch=4)
    try:
        async with kuryr(stack, tmp_path, config) as k:
            did, pool_id = await k.network("10.97.13.0/24")
            ids = k.docker_ids
            pool = await k.filled(did, 3)
            taken = await k.request_address(pool_id)
            before = {pp.port_id for pp in pool.free.values()}
            subnet_id = pool.subnet_id
            await k.driver.endpoints.drain()

        async with kuryr(stack, tmp_path, config) as k2:
            k2.docker_ids = ids
            reloaded = k2.driver.pools.pool(subnet_id)
            assert reloaded is not None, "the pool is gone after a restart"
            assert before <= set(reloaded.free), "free ports were not reloaded"
            assert taken in {pp.ip for pp in reloaded.taken.values()}, "a taken port came back free"
            # The restarted daemon answers RequestAddress from the reloaded pool.
            again = await k2.request_address(pool_id)
            assert again != taken
            await k2.release_address(pool_id, again)
            await k2.release_address(pool_id, taken)
            await k2.driver.delete_network(p.NetworkRequest(network_id=did))
    finally:
        await cleanup(neutron_client(stack.neutron_url), ids)
