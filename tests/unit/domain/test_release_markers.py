"""Release markers: DeleteEndpoint releases a container's port and marks its address, so that
dockerd's ReleaseAddress, arriving after it, costs nothing and never takes the port of the
next container that got the same address (Kuryr IPAM, pools off and on)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from kuryr.config import PoolConfig
from tests.fakes.daemon import Container, Daemon, Net, daemon, default_subnetpools, eventually
from tests.fakes.neutron import FakeNeutron
from tests.fakes.neutron_schema import PROJECT

# Pools on: with room for the released port, which goes back to its pool.
POOLS = [PoolConfig(), PoolConfig(min=2, max=8, batch=2)]


async def retake(d: Daemon, net: Net, address: str, late: str = "") -> Container:
    """``docker run --ip address``: RequestAddress of that address, CreateEndpoint, Join;
    ``late``: the PoolID of an earlier container's ReleaseAddress of the same address that
    dockerd sends between the RequestAddress and the CreateEndpoint."""
    assert await d.request_address(net.pool_id, address) == address
    reserved = d.port_holding(net, address)
    if late:
        await d.release_address(late, address)
    container = await d.create_endpoint(net, address)
    await d.join(container)
    kept = d.port_holding(net, address)
    assert reserved is not None and kept is not None
    assert kept["id"] == reserved["id"], "the endpoint got the port RequestAddress reserved"
    return container


def holder(d: Daemon, net: Net, address: str) -> str:
    """The device_id Neutron will hold for the address, once the journal wrote it."""
    port = d.port_holding(net, address)
    return "" if port is None else str(port["device_id"])


@pytest.mark.parametrize("pool", POOLS, ids=["pools off", "pools on"])
async def test_a_late_release_address_keeps_the_next_containers_port(
    tmp_path: Path, pool: PoolConfig
) -> None:
    async with daemon(tmp_path, pool) as d:
        net = await d.kuryr_network()
        first = await d.run(net)
        await d.stop(first, release=False)  # dockerd's ReleaseAddress comes later

        second = await retake(d, net, first.address, late=net.pool_id)

        await eventually(lambda: holder(d, net, first.address) == second.endpoint_id, "booked")
        await d.stop(second)
        await eventually(
            lambda: holder(d, net, first.address) != second.endpoint_id, "the port is released"
        )


async def test_a_release_marker_survives_a_restart(tmp_path: Path) -> None:
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await d.kuryr_network()
        first = await d.run(net)
        await d.stop(first, release=False)
    async with daemon(tmp_path, neutron=neutron) as d:
        second = await retake(d, net, first.address, late=net.pool_id)

        await eventually(lambda: holder(d, net, first.address) == second.endpoint_id, "booked")


async def test_release_address_of_an_address_no_endpoint_took_deletes_its_port(
    tmp_path: Path,
) -> None:
    # A start that failed between RequestAddress and CreateEndpoint: dockerd releases it.
    async with daemon(tmp_path) as d:
        net = await d.kuryr_network()
        address = await d.request_address(net.pool_id)
        assert d.port_holding(net, address) is not None

        await d.release_address(net.pool_id, address)

        assert d.port_holding(net, address) is None


async def test_release_address_spares_a_port_it_did_not_give(tmp_path: Path) -> None:
    # Without a marker (none was written: the address was never this daemon's), a port that
    # holds the address and is not Kuryr's is left alone.
    async with daemon(tmp_path) as d:
        net = await d.kuryr_network()
        address = str(ipaddress.ip_network(net.cidr)[77])
        made = d.neutron.make(
            "ports",
            {
                "network_id": net.neutron_id,
                "project_id": PROJECT,
                "device_owner": "compute:nova",
                "device_id": "vm-1",
                "fixed_ips": [{"subnet_id": net.subnet_id, "ip_address": address}],
            },
        )

        await d.release_address(net.pool_id, address)

        assert d.neutron.get("ports", made["id"]) == made
