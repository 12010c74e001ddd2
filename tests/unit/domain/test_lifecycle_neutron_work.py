"""What a container lifecycle costs Neutron in the steady state, on the in-memory Neutron: a
start from a pool port writes the port (device_id, name) and its tags, a stop cleans both, and
nothing else: no status read of a port whose VIF went back to its pool and came out of it
untouched, no refill of a pool whose ports come back (issue 18: at most 4 requests per
lifecycle)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import Params, Resource
from kuryr.config import PoolConfig
from kuryr.domain.ports.ledger import PortPool
from kuryr.domain.ports.status import ACTIVE, AHEAD_READS
from kuryr.driver import KuryrNetworkDriver
from kuryr.plugin import protocol as p
from tests.fakes.clock import Clock
from tests.fakes.daemon import Container, Daemon, Net, daemon, eventually

# As the local stack runs the daemon (kuryr/stack/daemon.py), bookkeeping written at once.
STACK = PoolConfig(min=2, max=40, batch=4, initial=4, window=10.0, idle_after=300.0)
LIFECYCLES = 10


def kuryr_driver(d: Daemon) -> KuryrNetworkDriver:
    assert isinstance(d.network, KuryrNetworkDriver)
    return d.network


async def warmed(d: Daemon, net: Net) -> None:
    """The pool filled, and each of its ports taken once by a container whose join read its
    status (OVN reported it up: ACTIVE in Neutron), and given back with its VIF."""
    await eventually(lambda: len(d.ports(net)) >= STACK.initial, "the first fill")
    pool = d.pools.pool(net.subnet_id)
    assert pool is not None
    await eventually(lambda: pool.refill is None and not pool.creating, "the first fill is over")
    for _ in range(len(pool.free)):
        await seen_active(d, net)


async def seen_active(d: Daemon, net: Net) -> Container:
    """A container that came and went, its port seen ACTIVE while it ran (OVN reported it up)."""
    container = await d.run(net)
    await kuryr_driver(d).endpoints.flush()
    port = d.port_holding(net, container.address)
    assert port is not None
    d.neutron.change("ports", port["id"], status=ACTIVE)
    await kuryr_driver(d).watch.check()
    await d.stop(container)
    await kuryr_driver(d).endpoints.flush()
    return container


@pytest.mark.parametrize("ipam", ["kuryr", "docker"])
async def test_a_steady_state_lifecycle_costs_neutron_its_bookkeeping_only(
    tmp_path: Path, ipam: str
) -> None:
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net = await (d.kuryr_network() if ipam == "kuryr" else d.docker_network("10.79.0.0/24"))
        await warmed(d, net)
        before = Counter(d.neutron.calls)

        for _ in range(LIFECYCLES):
            container = await d.run(net)
            await kuryr_driver(d).endpoints.flush()
            port = d.port_holding(net, container.address)
            assert port is not None and port["device_id"] == container.endpoint_id
            assert port["name"] != naming.POOL_PORT_NAME, "a running container's port names it"
            await kuryr_driver(d).watch.check()
            await d.stop(container)
            await kuryr_driver(d).endpoints.flush()
            back = d.neutron.get("ports", port["id"])
            assert back is not None and not back["device_id"], "a free pool port names no one"

        made = Counter(d.neutron.calls)
        made.subtract(before)
        requests = {call: n for call, n in made.items() if n}
        assert requests == {("PUT", "ports"): 4 * LIFECYCLES}, requests


async def test_a_start_takes_the_port_the_last_stop_gave_back(tmp_path: Path) -> None:
    """Without warming every pool port: once one container has come and gone, each next start
    takes that port again (its VIF kept, ACTIVE in Neutron), so its join reads no status."""
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.ports(net)) >= STACK.initial, "the first fill")
        first = await seen_active(d, net)
        before = Counter(d.neutron.calls)

        for _ in range(LIFECYCLES):
            container = await d.run(net)
            assert container.address == first.address, "the port back last is taken first"
            await kuryr_driver(d).endpoints.flush()
            await kuryr_driver(d).watch.check()
            await d.stop(container)
            await kuryr_driver(d).endpoints.flush()

        made = Counter(d.neutron.calls)
        made.subtract(before)
        requests = {call: n for call, n in made.items() if n}
        assert requests == {("PUT", "ports"): 4 * LIFECYCLES}, requests


async def test_a_port_made_for_a_docker_mac_is_not_pooled(tmp_path: Path) -> None:
    """``docker run --mac-address``: its port carries Docker's MAC, so when the container goes
    the port is deleted, and the next container gets a port with one of Neutron's MACs."""
    mac = "02:42:ac:11:00:99"
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.ports(net)) >= STACK.initial, "the first fill")
        address = await d.request_address(net.pool_id, options={p.OPT_MAC_ADDRESS: mac})
        container = await d.create_endpoint(net, address, mac=mac)
        await d.join(container)
        port = d.port_holding(net, address)
        assert port is not None and port["mac_address"] == mac
        await d.stop(container)
        await kuryr_driver(d).endpoints.flush()

        after = await d.run(net)
        again = d.port_holding(net, after.address)
        assert again is not None and again["mac_address"] != mac
        await eventually(lambda: d.neutron.get("ports", port["id"]) is None, "its deletion")


async def plugged_ahead(d: Daemon) -> tuple[Net, PortPool]:
    """A new Kuryr network whose first fill is in and plugged ahead, no container yet."""
    net = await d.kuryr_network()
    pool = d.pools.pool(net.subnet_id)
    assert pool is not None
    await eventually(lambda: len(pool.free) >= STACK.initial, "the first fill")
    await eventually(lambda: all(d.binder.plugs(p) for p in pool.free), "the pool plugged ahead")
    return net, pool


async def test_the_ports_a_refill_plugged_ahead_are_read_along_with_the_first_join(
    tmp_path: Path,
) -> None:
    """A fresh pool's ports are plugged ahead, then read along with the first read the watcher
    makes (the first container's join): seen ACTIVE there, the containers that take the other
    ports next, with no stop between, read no status of their own."""
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net, _ = await plugged_ahead(d)
        for port in d.ports(net):
            d.neutron.change("ports", port["id"], status=ACTIVE)
        first = await d.run(net)
        await kuryr_driver(d).endpoints.flush()
        reads = Counter(d.neutron.calls)[("GET", "ports")]
        await kuryr_driver(d).watch.check()
        assert Counter(d.neutron.calls)[("GET", "ports")] == reads + 1, "one read for all"

        taken = {first.address}
        for _ in range(STACK.initial - 2):
            container = await d.run(net)
            await kuryr_driver(d).endpoints.flush()
            await kuryr_driver(d).watch.check()
            taken.add(container.address)
        assert len(taken) == STACK.initial - 1, "each container took another pool port"
        assert Counter(d.neutron.calls)[("GET", "ports")] == reads + 1, "no read per join"


async def test_a_port_plugged_ahead_that_never_goes_active_is_read_a_bounded_number_of_times(
    tmp_path: Path,
) -> None:
    """A free port Neutron never reports ACTIVE (an unbound one, say) rides along with the
    watcher's reads at most AHEAD_READS times, then is left to its join."""
    async with daemon(tmp_path, STACK, clock=Clock()) as d:
        net, pool = await plugged_ahead(d)
        ahead = set(pool.free)
        read: list[set[str]] = []
        query = d.neutron.query

        async def recording(resource: str, params: Params | None = None) -> list[Resource]:
            if resource == "ports" and params and params.get("fields") == ["id", "status"]:
                read.append(set(params["id"]))
            return await query(resource, params)

        d.neutron.query = recording  # type: ignore[method-assign]
        container = await d.run(net)  # its port never goes ACTIVE either: watched each round
        await kuryr_driver(d).endpoints.flush()
        for _ in range(AHEAD_READS + 2):
            await kuryr_driver(d).watch.check()
        taken = d.port_holding(net, container.address)
        assert taken is not None
        still_free = ahead - {taken["id"]}
        assert [bool(still_free & ids) for ids in read] == [True] * AHEAD_READS + [False] * 2
