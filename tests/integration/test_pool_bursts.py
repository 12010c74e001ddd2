"""A burst of starts on an empty pool: the misses share bulk creates instead of one Neutron
POST each, every start still gets a port of its own, and the pool's target follows the burst."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kuryr.config import PoolConfig
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.pool_helpers import kuryr_network, kuryr_ports

pytestmark = pytest.mark.stack

BURST = 12


async def test_concurrent_misses_share_bulk_creates(stack: StackFacts, tmp_path: Path) -> None:
    # min and initial 0: the new network's pool stays empty, so every request of the burst
    # misses.
    config = PoolConfig(min=0, max=4, batch=0, initial=0)
    async with kuryr_network(stack, tmp_path, config, "10.97.14.0/24") as (k, did, pool_id):
        pool = await k.pool_of(did)
        assert not pool.free and pool.refill is None, "min 0 leaves the pool empty"
        posts_before = k.neutron.calls[("POST", "ports")]

        answers = await asyncio.gather(*(k.request_address(pool_id) for _ in range(BURST)))

        posts = k.neutron.calls[("POST", "ports")] - posts_before
        assert len(set(answers)) == BURST, f"an address was handed out twice: {answers}"
        assert posts < BURST, f"{posts} port POSTs for {BURST} concurrent misses"
        assert len(pool.taken) == BURST and len(pool.free) <= config.max
        assert pool.target > config.min, "the burst raised the pool's refill target"
        network = await k.network_of(did)
        on_network = {pt["id"] for pt in await kuryr_ports(stack, network.neutron_id)}
        assert set(pool.taken) <= on_network, "a handed-out port is not in Neutron"

        for address in answers:
            await k.release_address(pool_id, address)
        assert len(pool.free) <= config.max
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        await k.driver.removals.drained()  # the removal goes on after the answer
        assert await kuryr_ports(stack, network.neutron_id) == []
