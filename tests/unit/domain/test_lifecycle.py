"""A container's life through the driver interfaces, on the in-memory Neutron: what the port
holds in Neutron at each step, and that the daemon closes whenever it is told to."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kuryr import naming
from kuryr.config import PoolConfig
from tests.fakes.daemon import HOST, daemon, eventually

CLOSE_TIMEOUT = 5.0


async def test_daemon_closes_right_after_a_join(tmp_path: Path) -> None:
    # Join wakes the port status watcher; a shutdown with no await since then used to be lost
    # by asyncio.wait_for (Python 3.11) and the close never returned.
    async with daemon(tmp_path) as d:
        net = await d.kuryr_network()
        closing = d.close
        await d.run(net)
        await asyncio.wait_for(closing(), CLOSE_TIMEOUT)


async def test_a_container_port_is_bound_here_and_carries_its_endpoint(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        net = await d.kuryr_network()
        container = await d.run(net)

        def booked() -> bool:
            port = d.port_holding(net, container.address)
            return port is not None and port["device_id"] == container.endpoint_id

        await eventually(booked, "the journal wrote the port's bookkeeping")
        port = d.port_holding(net, container.address)
        assert port is not None
        assert port["device_owner"] == naming.DEVICE_OWNER
        assert port["binding:host_id"] == HOST
        assert port["device_id"] == container.endpoint_id
        assert port["name"] == naming.port_name(container.endpoint_id)
        assert sorted(port["tags"]) == sorted(naming.id_tags(container.endpoint_id))
        assert d.binder.plugs() == [port["id"]]

        await d.stop(container)
        await eventually(lambda: d.ports(net) == [], "the port is deleted")
        await eventually(lambda: d.binder.unplugs() == [port["id"]], "its VIF is unplugged")


async def test_a_pooled_start_costs_neutron_no_call(tmp_path: Path) -> None:
    # min and initial 1: the start leaves the pool at its target, so no refill follows it.
    async with daemon(tmp_path, PoolConfig(min=1, max=4, batch=2, initial=1)) as d:
        net = await d.kuryr_network()

        def pooled() -> bool:
            ports = d.ports(net)
            return len(ports) == 2 and all(naming.POOL_TAG in pt["tags"] for pt in ports)

        await eventually(pooled, "the pool is filled and its ports tagged")
        await eventually(lambda: len(d.binder.wired) == 2, "its ports are plugged ahead")
        calls = sum(d.neutron.calls.values())

        await d.run(net)

        assert sum(d.neutron.calls.values()) == calls


async def test_bookkeeping_neutron_refused_is_written_on_a_retry(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        net = await d.kuryr_network()
        d.neutron.faults.fail("PUT", "ports", status=503)

        container = await d.run(net)

        def booked() -> bool:
            port = d.port_holding(net, container.address) or {}
            return port.get("device_id") == container.endpoint_id and bool(port.get("tags"))

        await eventually(booked, "the journal retried", timeout=10.0)
