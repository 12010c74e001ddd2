"""A port made by hand for an address (kuryr-libnetwork's "existing port") is adopted by the
container that asks for that address, and handed back when the container goes: never
deleted. A port someone else owns is refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import Resource
from kuryr.config import PoolConfig
from kuryr.errors import Conflict
from tests.fakes.daemon import HOST, Daemon, Net, daemon, eventually

POOLS = [PoolConfig(), PoolConfig(min=2, max=4, batch=2)]


def hand_made(d: Daemon, net: Net, owner: str = "", tags: tuple[str, ...] = ()) -> Resource:
    address = str(ipaddress.ip_network(net.cidr)[40])
    attrs = {
        "network_id": net.neutron_id,
        "name": "by-hand",
        "device_owner": owner,
        "fixed_ips": [{"subnet_id": net.subnet_id, "ip_address": address}],
    }
    return d.neutron.make("ports", attrs, tags=tags)


def handed_back(d: Daemon, made: Resource) -> bool:
    """The README's contract: owner, host binding, device_id and Kuryr's tags cleared (its own
    tags kept); the same port, not deleted."""
    port = d.neutron.get("ports", made["id"])
    return port is not None and all(
        port[key] == made[key]
        for key in ("device_id", "device_owner", "binding:host_id", "tags", "mac_address")
    )


@pytest.mark.parametrize("pool", POOLS, ids=["pools off", "pools on"])
async def test_kuryr_ipam_adopts_a_hand_made_port_and_hands_it_back(
    tmp_path: Path, pool: PoolConfig
) -> None:
    async with daemon(tmp_path, pool) as d:
        net = await d.kuryr_network()
        made = hand_made(d, net, tags=("user-tag",))
        address = made["fixed_ips"][0]["ip_address"]

        assert await d.request_address(net.pool_id, address) == address
        container = await d.create_endpoint(net, address)
        answer = await d.join(container)

        adopted = d.neutron.get("ports", made["id"])
        assert adopted is not None
        assert adopted["device_owner"] == naming.DEVICE_OWNER
        assert adopted["binding:host_id"] == HOST
        assert naming.TAG_EXISTING_PORT in adopted["tags"] and "user-tag" in adopted["tags"]
        assert answer.interface_name.src_name.endswith(made["id"][:11])
        assert d.binder.plugs(made["id"]) == [made["id"]]

        await d.stop(container)

        await eventually(lambda: handed_back(d, made), "the port is handed back")
        await eventually(lambda: d.binder.unplugs(made["id"]) != [], "its VIF is unplugged")


async def test_docker_ipam_adopts_a_hand_made_port_and_hands_it_back(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        net = await d.docker_network("10.77.0.0/24")
        made = hand_made(d, net)
        address = made["fixed_ips"][0]["ip_address"]

        container = await d.create_endpoint(net, address)
        await d.join(container)

        def booked() -> bool:
            port = d.neutron.get("ports", made["id"]) or {}
            return port.get("device_id") == container.endpoint_id

        await eventually(booked, "the adopted port carries the endpoint")
        await d.stop(container)

        await eventually(lambda: handed_back(d, made), "the port is handed back")


@pytest.mark.parametrize("pool", POOLS, ids=["pools off", "pools on"])
async def test_a_port_someone_else_owns_is_refused_and_left_alone(
    tmp_path: Path, pool: PoolConfig
) -> None:
    async with daemon(tmp_path, pool) as d:
        net = await d.kuryr_network()
        made = hand_made(d, net, owner="compute:nova")
        address = made["fixed_ips"][0]["ip_address"]

        with pytest.raises(Conflict, match=made["id"]):
            await d.request_address(net.pool_id, address)

        assert d.neutron.get("ports", made["id"]) == made
        assert d.port_holding(net, address) == made
