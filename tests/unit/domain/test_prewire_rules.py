"""VIFs plugged ahead: which free pool ports get one (``batch`` at first, one more per start
that found none), Join using it without a plug, and on release a whole VIF kept for the next
container, a changed one plugged afresh, and the VIF of a deleted port unplugged only once
Neutron has deleted the port."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kuryr.config import PoolConfig
from tests.fakes.daemon import Daemon, Net, daemon, eventually

# Room in the pool for a released port: it goes back rather than being deleted.
ROOMY = PoolConfig(min=2, max=8, batch=2)


def pooled(d: Daemon, net: Net) -> set[str]:
    return {str(port["id"]) for port in d.ports(net) if not port["device_id"]}


def port_of(d: Daemon, net: Net, address: str) -> str:
    port = d.port_holding(net, address)
    assert port is not None
    return str(port["id"])


async def test_a_new_pool_plugs_batch_ports_ahead_not_all(tmp_path: Path) -> None:
    async with daemon(tmp_path, PoolConfig(min=4, max=4, batch=2)) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.ports(net)) == 4, "the pool is filled")
        await eventually(lambda: len(d.binder.wired) == 2, "batch ports are plugged ahead")

        assert set(d.binder.wired) < pooled(d, net)


async def test_join_takes_the_vif_plugged_ahead(tmp_path: Path) -> None:
    async with daemon(tmp_path, PoolConfig(min=2, max=4, batch=2)) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.binder.wired) == 2, "plugged ahead")
        plugs = len(d.binder.plugs())

        container = await d.run(net)

        port = port_of(d, net, container.address)
        assert d.binder.plugs(port) == [port], "plugged once, ahead"
        assert port in d.binder.wired
        await eventually(lambda: len(d.binder.plugs()) > plugs, "the next free port is plugged")


async def test_a_start_that_found_no_vif_raises_how_many_are_plugged_ahead(
    tmp_path: Path,
) -> None:
    # Docker's own IPAM: the pool keeps the lowest free addresses, the lowest plugged ahead.
    async with daemon(tmp_path, PoolConfig(min=4, max=4, batch=1)) as d:
        net = await d.docker_network("10.78.0.0/24")
        await eventually(lambda: len(pooled(d, net)) == 4, "the pool is filled")
        await eventually(lambda: len(d.binder.wired) == 1, "one free port plugged ahead")
        [ahead] = d.binder.wired
        unwired = [p for p in d.ports(net) if p["id"] != ahead]
        address = unwired[0]["fixed_ips"][0]["ip_address"]

        container = await d.create_endpoint(net, address)  # docker run --ip: a port with no VIF
        await d.join(container)

        port = port_of(d, net, address)
        assert d.binder.plugs(port) == [port], "plugged at Join"
        await eventually(lambda: len(set(d.binder.wired) - {port}) == 2, "two plugged ahead now")


async def test_a_released_port_keeps_its_whole_vif(tmp_path: Path) -> None:
    async with daemon(tmp_path, ROOMY) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.binder.wired) == 2, "plugged ahead")
        container = await d.run(net)
        port = port_of(d, net, container.address)

        await d.stop(container)
        await eventually(lambda: port in pooled(d, net), "back in its pool")
        await eventually(lambda: port in d.binder.wired, "its VIF is kept")

        assert d.binder.unplugs(port) == []
        assert d.binder.plugs(port) == [port], "no plug again"


async def test_a_released_port_whose_vif_changed_is_plugged_afresh(tmp_path: Path) -> None:
    async with daemon(tmp_path, ROOMY) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.binder.wired) == 2, "plugged ahead")
        container = await d.run(net)
        port = port_of(d, net, container.address)
        d.binder.spoil(port)  # the container changed its interface (MAC, MTU, flags)

        await d.stop(container)

        await eventually(lambda: d.binder.plugs(port) == [port, port], "plugged again")
        await eventually(lambda: port in d.binder.wired, "whole again")


async def test_the_vif_of_a_deleted_port_goes_once_neutron_deleted_it(tmp_path: Path) -> None:
    async with daemon(tmp_path, PoolConfig(min=1, max=1, batch=1)) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(pooled(d, net)) == 1, "the pool is filled")
        container = await d.run(net)
        port = port_of(d, net, container.address)
        await eventually(lambda: len(pooled(d, net)) == 1, "the pool is filled again")
        deleting = d.neutron.faults.hold("DELETE", "ports")

        await d.stop(container)  # the pool is full: the port is deleted
        await eventually(lambda: d.neutron.calls[("DELETE", "ports")] == 1, "the delete is sent")

        assert d.binder.unplugs(port) == [], "unplugged before Neutron deleted the port"
        deleting.set()
        await eventually(lambda: d.neutron.get("ports", port) is None, "the port is deleted")
        await eventually(lambda: d.binder.unplugs(port) == [port], "then its VIF is unplugged")


async def test_without_pools_a_stopped_containers_vif_goes_after_its_port(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        net = await d.kuryr_network()
        container = await d.run(net)
        port = port_of(d, net, container.address)
        deleting = d.neutron.faults.hold("DELETE", "ports")

        stopping = asyncio.create_task(d.stop(container))  # DeleteEndpoint deletes the port
        await eventually(lambda: d.neutron.calls[("DELETE", "ports")] == 1, "the delete is sent")

        assert d.binder.unplugs(port) == [], "unplugged before Neutron deleted the port"
        deleting.set()
        await stopping
        assert d.neutron.get("ports", port) is None
        await eventually(lambda: d.binder.unplugs(port) == [port], "then its VIF is unplugged")
