"""Pools that follow demand against the real Neutron, through the domain as ``kuryr serve``
builds it: a new network's pool starts at ``initial``, a burst grows it to the burst, an idle
pool shrinks to its floor and its surplus leaves Neutron, and the network's removal leaves no
port behind. The pools' clock is the test's (no waiting through ``idle_after``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kuryr.config import PoolConfig
from kuryr.domain.ports.port import Port
from kuryr.naming import POOL_TAG
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.fakes.clock import Clock
from tests.integration.pool_helpers import kuryr_network, kuryr_ports

pytestmark = pytest.mark.stack

BURST = 12


async def test_a_pool_grows_under_a_burst_and_shrinks_to_its_floor_when_idle(
    stack: StackFacts, tmp_path: Path
) -> None:
    clock = Clock()
    config = PoolConfig(min=2, max=16, batch=4, initial=4, window=10.0, idle_after=300.0)
    cidr = "10.97.16.0/24"
    async with kuryr_network(stack, tmp_path, config, cidr, clock) as (k, did, pool_id):
        pool = await k.filled(did, config.initial)
        assert len(pool.free) == config.initial, "a new network's pool starts at initial"

        answers = await asyncio.gather(*(k.request_address(pool_id) for _ in range(BURST)))
        await k.filled(did, BURST)
        assert pool.target == BURST, "the burst set the pool's target"
        assert len(pool.free) <= config.max

        clock.now += config.idle_after
        gone = k.driver.pools.shrink.idle()
        assert gone > 0 and len(pool.free) == config.min, "idle: back to the floor"
        await k.driver.endpoints.flush()  # the journaled deletes reach Neutron
        network = await k.network_of(did)
        on_network = await kuryr_ports(stack, network.neutron_id)
        held = set(answers)
        ports = [Port.from_neutron(pt) for pt in on_network]
        free = [pt for pt in ports if not {ip for _, ip in pt.fixed_ips} & held]
        assert len(free) == config.min, f"{len(free)} free pool ports left in Neutron"
        assert all(POOL_TAG in pt.tags for pt in free)

        for address in answers:
            await k.release_address(pool_id, address)
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        await k.driver.removals.drained()  # the removal goes on after the answer
        assert await kuryr_ports(stack, network.neutron_id) == []
