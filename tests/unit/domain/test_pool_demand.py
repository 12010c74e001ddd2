"""Pools that follow demand, on the in-memory Neutron: a new network's pool starts small, a
burst grows it so the next burst is served from it, it never holds more than ``max`` free
ports, and an idle pool shrinks to its floor (its surplus deleted from Neutron). The clock the
pools read is the test's: nothing sleeps through ``window`` or ``idle_after``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import Resource
from kuryr.config import PoolConfig
from tests.fakes.clock import Clock
from tests.fakes.daemon import Daemon, Net, daemon, eventually

# As the local stack runs the daemon (kuryr/stack/daemon.py).
STACK = PoolConfig(min=2, max=40, batch=4, initial=4, window=10.0, idle_after=300.0)
BURST = 20


def free_ports(d: Daemon, net: Net, handed: set[str]) -> list[Resource]:
    """Kuryr's ports on the network that hold none of the addresses handed out."""
    return [
        port for port in d.ports(net) if not {f["ip_address"] for f in port["fixed_ips"]} & handed
    ]


def addresses(ports: list[Resource]) -> set[str]:
    return {f["ip_address"] for port in ports for f in port["fixed_ips"]}


async def burst(d: Daemon, net: Net, count: int) -> set[str]:
    return set(await asyncio.gather(*(d.request_address(net.pool_id) for _ in range(count))))


async def settled(d: Daemon, net: Net) -> None:
    """The pool's refill is over (its bulk creates made and taken in)."""
    pool = d.pools.pool(net.subnet_id)
    assert pool is not None
    await eventually(lambda: pool.refill is None and not pool.creating, "the refill is over")
    await asyncio.sleep(0.02)  # a refill kicked by the last take has had its turn


@pytest.mark.parametrize("ipam", ["kuryr", "docker"])
async def test_a_new_networks_pool_starts_with_at_most_four_ports(
    tmp_path: Path, ipam: str
) -> None:
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net = await (d.kuryr_network() if ipam == "kuryr" else d.docker_network("10.79.0.0/24"))

        await eventually(lambda: len(d.ports(net)) == STACK.initial, "the first fill")
        await settled(d, net)

        assert len(d.ports(net)) <= 4


async def test_a_burst_grows_the_pool_and_the_next_burst_is_served_from_it(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.ports(net)) == STACK.initial, "the first fill")

        handed = await burst(d, net, BURST)
        await eventually(lambda: len(free_ports(d, net, handed)) >= BURST, "grown to the burst")
        await settled(d, net)
        ready = addresses(free_ports(d, net, handed))
        pool = d.pools.pool(net.subnet_id)
        assert pool is not None and pool.target == BURST

        again = await burst(d, net, BURST)

        assert again <= ready, f"{len(again - ready)} of the second burst missed the pool"


async def test_bursts_beyond_max_never_leave_more_than_max_free(tmp_path: Path) -> None:
    small = PoolConfig(min=2, max=8, batch=4, initial=4, window=10.0, idle_after=300.0)
    async with daemon(tmp_path, small, clock=Clock()) as d:
        d.neutron.faults.slow(0.01, "POST", "ports")
        net = await d.kuryr_network()
        handed: set[str] = set()
        most = 0
        for _ in range(3):
            handed |= await burst(d, net, BURST)
            for _ in range(10):
                most = max(most, len(free_ports(d, net, handed)))
                await asyncio.sleep(0.01)
        await settled(d, net)

        pool = d.pools.pool(net.subnet_id)
        assert pool is not None and pool.target == small.max
        assert max(most, len(free_ports(d, net, handed))) <= small.max


async def test_an_idle_pool_shrinks_to_its_floor(tmp_path: Path) -> None:
    clock = Clock()
    async with daemon(tmp_path, STACK, clock=clock) as d:
        net = await d.kuryr_network()
        handed = await burst(d, net, BURST)
        await eventually(lambda: len(free_ports(d, net, handed)) >= BURST, "grown to the burst")
        await settled(d, net)

        clock.now += STACK.idle_after - 1
        assert d.pools.shrink.idle() == 0, "not idle yet"
        clock.now += 1
        gone = d.pools.shrink.idle()

        assert gone == len(free_ports(d, net, handed)) - STACK.min
        await eventually(
            lambda: len(free_ports(d, net, handed)) == STACK.min, "the surplus is deleted"
        )
        assert all(naming.POOL_TAG in port["tags"] for port in free_ports(d, net, handed))
        assert len(d.ports(net)) == BURST + STACK.min, "the ports containers hold stay"
        pool = d.pools.pool(net.subnet_id)
        assert pool is not None and pool.target == STACK.min and len(pool.free) == STACK.min
        await asyncio.sleep(0.02)
        assert len(free_ports(d, net, handed)) == STACK.min, "no refill undoes the shrink"

        clock.now += STACK.idle_after / 2
        await d.request_address(net.pool_id)
        clock.now += STACK.idle_after / 2
        assert d.pools.shrink.idle() == 0, "a take made it busy again"
