"""VIFs plugged ahead (kuryr.domain.ports.prewire) against the real OVS, OVN and Neutron, through
the
domain as ``kuryr serve`` builds it: a free pool port is wired before any container asks,
Join takes that very interface, the port's next container takes it again (plugged afresh only
when its last container changed it), a restart keeps the wired VIFs, and a removed network
leaves no interface behind."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from kuryr.backends.binding.base import container_ifname, host_ifname
from kuryr.config import PoolConfig
from kuryr.domain.ports.pools import PortPool
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import cleanup, docker_id, neutron_client
from tests.integration.pool_helpers import Kuryr, kuryr, kuryr_network

pytestmark = pytest.mark.stack

WIRED_TIMEOUT = 60.0


def interface(name: str) -> dict[str, str] | None:
    """_uuid and external_ids:ovn-installed of OVS interface ``name``, None when absent."""
    done = subprocess.run(
        [
            "ovs-vsctl",
            "--bare",
            "--columns=_uuid,external_ids",
            "find",
            "interface",
            f"name={name}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    if not lines:
        return None
    return {"uuid": lines[0].strip(), "ovn-installed": str("ovn-installed=true" in done.stdout)}


def link_exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", name], capture_output=True, check=False)
    return done.returncode == 0


async def wired(port_id: str, replacing: str = "") -> dict[str, str]:
    """The port's interface once OVN has wired it and both veth ends exist; with
    ``replacing``, an interface other than the one of that uuid."""
    deadline = time.monotonic() + WIRED_TIMEOUT
    while True:
        found = interface(host_ifname(port_id))
        ready = found and found["ovn-installed"] == "True" and found["uuid"] != replacing
        if found and ready and link_exists(container_ifname(port_id)):
            return found
        assert time.monotonic() < deadline, f"port {port_id} never plugged ahead: {found}"
        await asyncio.sleep(0.2)


async def start(
    k: Kuryr, did: str, pool_id: str, address: str = ""
) -> tuple[str, str, p.JoinResponse]:
    """RequestAddress (of ``address`` when given), CreateEndpoint, Join: (endpoint id, port
    id, Join's answer)."""
    if address:
        request = p.RequestAddressRequest(pool_id=pool_id, address=address)
        await k.ipam.request_address(request)
    else:
        address = await k.request_address(pool_id)
    eid = docker_id()
    iface = p.EndpointInterface.model_validate({"Address": f"{address}/24"})
    await k.driver.create_endpoint(
        p.CreateEndpointRequest(network_id=did, endpoint_id=eid, interface=iface)
    )
    endpoint = await k.driver.endpoints.get(eid, did)
    answer = await k.driver.join(
        p.JoinRequest(network_id=did, endpoint_id=eid, sandbox_key="/var/run/docker/netns/x")
    )
    return eid, endpoint.port_id, answer


async def stop(k: Kuryr, did: str, pool_id: str, eid: str, address: str) -> None:
    await k.driver.leave(p.EndpointRequest(network_id=did, endpoint_id=eid))
    await k.driver.delete_endpoint(p.EndpointRequest(network_id=did, endpoint_id=eid))
    await k.release_address(pool_id, address)


def address_of(pool: PortPool, port_id: str) -> str:
    return pool.taken[port_id].ip


async def test_join_takes_the_vif_plugged_ahead_and_the_next_container_takes_it_again(
    stack: StackFacts, tmp_path: Path
) -> None:
    # Room for the released port beside the refill its take starts.
    config = PoolConfig(min=2, max=3, batch=1, initial=2)
    async with kuryr_network(stack, tmp_path, config, "10.97.40.0/24") as (k, did, pool_id):
        pool = await k.filled(did, 2)
        # ``batch`` free ports are plugged ahead, the oldest first: not the whole pool.
        assert len(pool.wired) == 1 and next(iter(pool.free)) in pool.wired
        ahead = {pid: await wired(pid) for pid in pool.wired}
        (unwired,) = set(pool.free) - pool.wired
        assert interface(host_ifname(unwired)) is None, "the whole pool was plugged ahead"

        eid, port_id, answer = await start(k, did, pool_id)

        assert port_id in ahead
        assert answer.interface_name.src_name == container_ifname(port_id)
        after_join = interface(host_ifname(port_id))
        assert after_join is not None
        assert after_join["uuid"] == ahead[port_id]["uuid"], "Join plugged the port again"

        address = address_of(pool, port_id)
        await stop(k, did, pool_id, eid, address)
        assert port_id in pool.free, "the released port went back to its pool"
        eid, again, _ = await start(k, did, pool_id, address)
        assert again == port_id
        kept = interface(host_ifname(port_id))
        assert kept is not None and kept["uuid"] == ahead[port_id]["uuid"], "plugged again"
        await stop(k, did, pool_id, eid, address)

        await k.driver.delete_network(p.NetworkRequest(network_id=did))

        await k.driver.removals.drained()  # the removal goes on after the answer
        deadline = time.monotonic() + WIRED_TIMEOUT
        while any(interface(host_ifname(pid)) or link_exists(host_ifname(pid)) for pid in ahead):
            assert time.monotonic() < deadline, "a removed network's VIFs stayed"
            await asyncio.sleep(0.2)


async def test_a_vif_its_container_changed_is_plugged_afresh_for_the_next(
    stack: StackFacts, tmp_path: Path
) -> None:
    config = PoolConfig(min=1, max=2, batch=1, initial=1)
    async with kuryr_network(stack, tmp_path, config, "10.97.42.0/24") as (k, did, pool_id):
        pool = await k.filled(did, 1)
        eid, port_id, _ = await start(k, did, pool_id)
        first = await wired(port_id)
        # A container with NET_ADMIN left its interface promiscuous.
        subprocess.run(["ip", "link", "set", container_ifname(port_id), "promisc", "on"])

        address = address_of(pool, port_id)
        await stop(k, did, pool_id, eid, address)
        eid, again, _ = await start(k, did, pool_id, address)
        assert again == port_id
        fresh = await wired(port_id)
        assert fresh["uuid"] != first["uuid"], "the changed VIF went to the next container"
        done = subprocess.run(
            ["ip", "-o", "link", "show", container_ifname(port_id)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "PROMISC" not in done.stdout
        await stop(k, did, pool_id, eid, address)
        await k.driver.delete_network(p.NetworkRequest(network_id=did))
        await k.driver.removals.drained()  # the removal goes on after the answer


async def test_a_restart_keeps_the_vifs_plugged_ahead(stack: StackFacts, tmp_path: Path) -> None:
    ids: list[str] = []
    config = PoolConfig(min=2, max=2, batch=2)
    try:
        async with kuryr(stack, tmp_path, config) as k:
            did, pool_id = await k.network("10.97.41.0/24")
            ids = k.docker_ids
            pool = await k.filled(did, 2)
            before = {pid: await wired(pid) for pid in pool.free}

        async with kuryr(stack, tmp_path, config) as k2:
            k2.docker_ids = ids
            eid, port_id, _ = await start(k2, did, pool_id)
            after = interface(host_ifname(port_id))
            assert after is not None and after["uuid"] == before[port_id]["uuid"]
            for pid, was in before.items():
                if pid != port_id:
                    assert (await wired(pid))["uuid"] == was["uuid"], "a restart replugged"
            reloaded = k2.driver.pools.pool(pool.subnet_id)
            assert reloaded is not None
            await stop(k2, did, pool_id, eid, address_of(reloaded, port_id))
            await k2.driver.delete_network(p.NetworkRequest(network_id=did))
            await k2.driver.removals.drained()  # the removal goes on after the answer
    finally:
        await cleanup(neutron_client(stack.neutron_url), ids)
