"""Port pools under concurrency: many RequestAddress at once on an empty or short pool never
hand a port out twice, share bulk creates, and never leave more than ``max`` free ports; a
refill Neutron refuses fails the starts waiting for it and leaves nothing behind; the ports of
a bulk create whose answer was lost are taken in. With Docker's own IPAM, the misses of a burst
share bulk creates on the addresses Docker chose, and one Neutron holds outside Kuryr's
knowledge falls back to the start's own port."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming, request_ids
from kuryr.config import PoolConfig
from kuryr.domain.ports.port import Port
from kuryr.errors import BackendError
from tests.fakes.daemon import Daemon, Net, daemon, eventually

BURST = 30


def free_ports(d: Daemon, net: Net, handed: set[str]) -> list[str]:
    """Kuryr's ports on the network that hold none of the addresses handed out."""
    return [
        str(port["id"])
        for port in d.ports(net)
        if not {f["ip_address"] for f in port["fixed_ips"]} & handed
    ]


async def burst(d: Daemon, net: Net, count: int) -> list[str]:
    return list(await asyncio.gather(*(d.request_address(net.pool_id) for _ in range(count))))


@pytest.mark.parametrize(
    "pool",
    [PoolConfig(min=0, max=4, batch=0), PoolConfig(min=2, max=4, batch=2)],
    ids=["empty pool", "short pool"],
)
async def test_a_burst_gets_distinct_ports_in_shared_bulk_creates_and_max_holds(
    tmp_path: Path, pool: PoolConfig
) -> None:
    async with daemon(tmp_path, pool) as d:
        net = await d.kuryr_network()
        posts = d.neutron.calls[("POST", "ports")]

        answers = await burst(d, net, BURST)

        assert len(set(answers)) == BURST, f"an address was handed out twice: {sorted(answers)}"
        holders = {a: d.port_holding(net, a) for a in answers}
        assert all(port is not None for port in holders.values()), "an answer has no port"
        assert len({str(p["id"]) for p in holders.values() if p}) == BURST
        assert d.neutron.calls[("POST", "ports")] - posts < BURST, "misses share bulk creates"
        handed = set(answers)
        await eventually(lambda: len(free_ports(d, net, handed)) >= pool.min, "refilled")
        await asyncio.sleep(0.05)  # any refill still under way has had its turn
        assert len(free_ports(d, net, handed)) <= pool.max


async def test_free_ports_never_exceed_max_while_bulk_creates_are_slow(tmp_path: Path) -> None:
    pool = PoolConfig(min=3, max=5, batch=3)
    async with daemon(tmp_path, pool) as d:
        d.neutron.faults.slow(0.02, "POST", "ports")
        net = await d.kuryr_network()
        handed: set[str] = set()
        most = 0
        for _ in range(4):
            handed |= set(await burst(d, net, 4))
            for _ in range(10):
                most = max(most, len(free_ports(d, net, handed)))
                await asyncio.sleep(0.01)

        assert len(handed) == 16
        assert most <= pool.max, f"{most} free ports, max is {pool.max}"


async def test_released_ports_beyond_max_are_deleted(tmp_path: Path) -> None:
    pool = PoolConfig(min=1, max=2, batch=1)
    async with daemon(tmp_path, pool) as d:
        net = await d.kuryr_network()
        containers = [await d.run(net) for _ in range(5)]
        for container in containers:
            await d.stop(container)

        await eventually(lambda: len(d.ports(net)) == pool.max, "back to max")
        assert all(Port.from_neutron(port).in_pool for port in d.ports(net))


async def test_a_refused_refill_fails_the_waiting_starts_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=0, max=4, batch=0)) as d:
        net = await d.kuryr_network()
        d.neutron.faults.fail("POST", "ports", status=503)

        results = await asyncio.gather(
            *(d.request_address(net.pool_id) for _ in range(3)), return_exceptions=True
        )

        assert all(isinstance(r, BackendError) for r in results), results
        assert d.ports(net) == []
        assert await d.request_address(net.pool_id), "the next start is served"


async def test_ports_of_a_bulk_create_whose_answer_was_lost_are_taken_in(tmp_path: Path) -> None:
    async with daemon(tmp_path, PoolConfig(min=2, max=2, batch=2)) as d:
        d.neutron.faults.lose_answers("POST", "ports")  # Neutron made them; Kuryr never heard
        net = await d.kuryr_network()
        await eventually(lambda: len(d.ports(net)) == 2, "the lost bulk made its ports")

        address = await d.request_address(net.pool_id)

        def settled() -> bool:
            ports = d.ports(net)
            free = [p for p in ports if p["fixed_ips"][0]["ip_address"] != address]
            return len(ports) == 3 and all(naming.POOL_TAG in p["tags"] for p in free)

        await eventually(settled, "the strays serve the start and stay pooled; one refill")


async def test_a_docker_ipam_pool_whose_first_round_lost_its_address_fills_up(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=4, max=4, batch=1)) as d:
        net = await d.docker_network("10.78.0.0/24")
        await d.run(net)  # at once, as `docker network create && docker run` does

        def pooled() -> int:
            return sum(Port.from_neutron(port).in_pool for port in d.ports(net))

        await eventually(lambda: pooled() == 4, "the pool is filled", timeout=2.0)


def addresses(cidr: str, first: int, count: int) -> list[str]:
    """``count`` host addresses of ``cidr`` from its ``first`` (1 is the gateway)."""
    hosts = list(ipaddress.ip_network(cidr).hosts())
    return [str(ip) for ip in hosts[first - 1 : first - 1 + count]]


async def pooled(d: Daemon, net: Net, count: int) -> None:
    def ready() -> bool:
        return sum(Port.from_neutron(port).in_pool for port in d.ports(net)) == count

    await eventually(ready, f"{count} ports in the pool")


async def test_a_docker_ipam_burst_shares_bulk_creates_for_the_addresses_docker_chose(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=0, max=4, batch=0, initial=2)) as d:
        net = await d.docker_network("10.79.0.0/24")
        await pooled(d, net, 2)
        d.neutron.faults.slow(0.02, "POST", "ports")
        posts = d.neutron.calls[("POST", "ports")]
        chosen = addresses(net.cidr, 2, BURST)

        made = await asyncio.gather(*(d.create_endpoint(net, ip) for ip in chosen))

        holders = [d.port_holding(net, c.address) for c in made]
        assert all(port is not None for port in holders), "an address has no port"
        assert len({str(port["id"]) for port in holders if port}) == BURST
        misses_posts = d.neutron.calls[("POST", "ports")] - posts
        # One bulk create for the 28 misses, and the pool's refill after them.
        assert misses_posts <= 3, f"{misses_posts} POSTs for {BURST - 2} misses"


async def test_a_miss_whose_address_neutron_holds_gets_that_port_and_the_others_share_a_bulk(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=0, max=4, batch=0, initial=0)) as d:
        net = await d.docker_network("10.80.0.0/24")
        chosen = addresses(net.cidr, 2, 8)
        by_hand = await d.neutron.create(
            "ports",
            {
                "network_id": net.neutron_id,
                "fixed_ips": [{"subnet_id": net.subnet_id, "ip_address": chosen[5]}],
            },
        )

        made = await asyncio.gather(*(d.create_endpoint(net, ip) for ip in chosen))

        holders = {c.address: d.port_holding(net, c.address) for c in made}
        assert all(port is not None for port in holders.values())
        adopted = holders[chosen[5]]
        assert adopted is not None and adopted["id"] == by_hand["id"], "the hand-made port"
        assert len({str(port["id"]) for port in holders.values() if port}) == len(chosen)


async def test_a_bulk_create_starts_wait_for_carries_a_waiting_request_id_a_refill_none(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=0, max=4, batch=0, initial=0)) as d:
        net = await d.kuryr_network()
        sent: list[str | None] = []
        real = d.neutron.create_bulk

        async def create_bulk(resource: str, items: Any, timeout: float | None = None) -> Any:
            sent.append(request_ids.current())
            return await real(resource, items, timeout)

        d.neutron.create_bulk = create_bulk  # type: ignore[method-assign]

        async def start() -> str:
            with request_ids.serving() as rid:
                await d.request_address(net.pool_id)
            return rid

        rids = set(await asyncio.gather(*(start() for _ in range(3))))

        await eventually(lambda: len(sent) >= 2, "the refill after the misses")
        missed, refill = sent[0], sent[-1]
        assert missed in rids, f"the misses' bulk create carried {missed!r}"
        assert refill is None, "a refill no start waits for is background work"


async def test_an_unreserved_address_on_a_kuryr_ipam_network_never_joins_a_bulk_create(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=0, max=4, batch=0, initial=0)) as d:
        net = await d.kuryr_network("10.81.0.0/24")
        held = addresses(net.cidr, 40, 1)[0]
        await d.neutron.create(
            "ports",
            {
                "network_id": net.neutron_id,
                "fixed_ips": [{"subnet_id": net.subnet_id, "ip_address": held}],
            },
        )

        # A CreateEndpoint whose address RequestAddress no longer holds (a daemon restarted
        # in between), among starts that miss the empty pool.
        unreserved = d.create_endpoint(net, held)
        answers = await asyncio.gather(unreserved, burst(d, net, 4), return_exceptions=True)

        assert not any(isinstance(a, BaseException) for a in answers), answers


async def test_the_read_before_a_large_bulk_create_keeps_each_request_short(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path, PoolConfig(min=0, max=4, batch=0, initial=0)) as d:
        net = await d.docker_network("10.82.0.0/24")
        asked: list[int] = []
        real = d.neutron.query

        async def query(resource: str, params: Any = None) -> Any:
            if resource == "ports" and params and "fixed_ips" in params:
                asked.append(len(params["fixed_ips"]))
            return await real(resource, params)

        d.neutron.query = query  # type: ignore[method-assign]
        chosen = addresses(net.cidr, 2, 150)

        made = await asyncio.gather(*(d.create_endpoint(net, ip) for ip in chosen))

        assert all(d.port_holding(net, c.address) for c in made), "an address has no port"
        assert asked and max(asked) <= 100, f"addresses per read: {asked}"
