"""A burst of starts on an empty pool: the misses share bulk creates instead of one Neutron
POST each, every start still gets a port of its own, and the pool's target follows the burst.
With Docker's own IPAM too, where each start asks for the address Docker chose: an address a
port made by hand holds keeps the bulk from failing whole (which would leave the addresses of
the bulk's other ports allocated in Neutron for good)."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from kuryr.config import PoolConfig
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import create_request, docker_id, neutron_client
from tests.integration.pool_helpers import Kuryr, kuryr, kuryr_network, kuryr_ports

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


async def test_docker_ipam_misses_share_a_bulk_create_and_a_held_address_is_adopted(
    stack: StackFacts, tmp_path: Path
) -> None:
    config = PoolConfig(min=0, max=4, batch=0, initial=0)
    cidr = "10.97.15.0/24"
    hosts = [str(ip) for ip in ipaddress.ip_network(cidr).hosts()]
    chosen = hosts[1 : BURST + 1]  # as Docker's IPAM hands them out, after the gateway
    neutron = neutron_client(stack.neutron_url)
    by_hand: dict[str, object] = {}
    async with kuryr(stack, tmp_path, config) as k:
        did = docker_id()
        k.docker_ids.append(did)
        try:
            gateway = f"{hosts[0]}/24"
            await k.driver.create_network(create_request(did, cidr, gateway, None, "LocalDefault"))
            network = await k.network_of(did)
            subnet_id = network.subnets[0].id
            held = {"subnet_id": subnet_id, "ip_address": chosen[BURST // 2]}
            by_hand = await neutron.create(
                "ports", {"network_id": network.neutron_id, "fixed_ips": [held]}
            )
            posts_before = k.neutron.calls[("POST", "ports")]

            made = await asyncio.gather(*(_endpoint(k, did, ip) for ip in chosen))

            posts = k.neutron.calls[("POST", "ports")] - posts_before
            ports = {
                str(port["id"]): port
                for port in await neutron.query("ports", {"network_id": network.neutron_id})
            }
            holders = {
                f["ip_address"]: pid for pid, port in ports.items() for f in port["fixed_ips"]
            }
            assert all(ip in holders for ip in chosen), f"an address has no port: {made}"
            assert holders[held["ip_address"]] == by_hand["id"], "the hand-made port is adopted"
            assert posts < BURST // 2, f"{posts} port POSTs for {BURST} misses"
            for endpoint_id in made:
                request = {"NetworkID": did, "EndpointID": endpoint_id}
                await k.driver.delete_endpoint(p.EndpointRequest.model_validate(request))
            assert await kuryr_ports(stack, network.neutron_id) != [], "kept by the pool"
            assert await neutron.show("ports", str(by_hand["id"])), "handed back, not deleted"
        finally:
            if by_hand:  # not Kuryr's: it would keep the network from going
                await neutron.delete("ports", str(by_hand["id"]))
            await k.driver.delete_network(p.NetworkRequest(network_id=did))
            await k.driver.removals.drained()


async def _endpoint(k: Kuryr, did: str, address: str) -> str:
    """CreateEndpoint for the address Docker's IPAM chose; the endpoint's id."""
    endpoint_id = docker_id()
    request = {
        "NetworkID": did,
        "EndpointID": endpoint_id,
        "Interface": {"Address": f"{address}/24"},
    }
    await k.driver.create_endpoint(p.CreateEndpointRequest.model_validate(request))
    return endpoint_id
