"""Port pools against the real Neutron, through the domain as ``kuryr serve`` builds it
(kuryr.driver.build with a private state directory): no double hand-out under concurrency,
never above max, tagged by their bulk POST, reloaded after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kuryr.config import PoolConfig
from kuryr.naming import POOL_TAG
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import cleanup, neutron_client
from tests.integration.pool_helpers import kuryr, kuryr_network, kuryr_ports

pytestmark = pytest.mark.stack


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
        network = await k.network_of(did)
        on_network = await kuryr_ports(stack, network.neutron_id)
        # No port was made outside the pool: 50 pool ports, plus at most a refill batch
        # that the emptied pool started meanwhile.
        assert {pt["id"] for pt in on_network} >= set(pooled.values())
        for address in answers:
            await k.release_address(pool_id, address)
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        await k.driver.removals.drained()  # the removal goes on after the answer


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
        await k.driver.endpoints.flush()  # the journaled deletes reach Neutron

        network = await k.network_of(did)
        on_network = await kuryr_ports(stack, network.neutron_id)
        assert len(on_network) <= 3, f"{len(on_network)} Kuryr ports left, max is 3"
        assert all(pt["device_id"] == "" for pt in on_network)
        assert all(POOL_TAG in pt["tags"] for pt in on_network)  # type: ignore[operator]
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        await k.driver.removals.drained()  # the removal goes on after the answer
        assert await kuryr_ports(stack, network.neutron_id) == []


async def test_pool_ports_carry_their_tag_from_their_bulk_post(
    stack: StackFacts, tmp_path: Path
) -> None:
    # The stack's ML2 runs tag_ports_during_bulk_creation (kuryr.stack.neutron): the daemon
    # finds it and no pool port needs a PUT of its tags.
    config = PoolConfig(min=4, max=4, batch=4, initial=4)
    async with kuryr_network(stack, tmp_path, config, "10.97.15.0/24") as (k, did, _):
        await k.filled(did, 4)
        await k.driver.endpoints.flush()

        puts = k.neutron.calls[("PUT", "ports")]
        assert puts == 0, f"{puts} PUT(s) of pool ports: is the ML2 extension driver on?"
        network = await k.network_of(did)
        on_network = await kuryr_ports(stack, network.neutron_id)
        assert len(on_network) == 4
        assert all(POOL_TAG in pt["tags"] for pt in on_network)  # type: ignore[operator]
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        await k.driver.removals.drained()  # the removal goes on after the answer
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
            await k.driver.endpoints.flush()

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
            await k2.driver.removals.drained()  # the removal goes on after the answer
    finally:
        await cleanup(neutron_client(stack.neutron_url), ids)
