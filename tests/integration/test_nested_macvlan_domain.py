"""A nested ``macvlan`` daemon's domain (kuryr.driver.build) on the real Neutron, inside a
namespace standing for the Nova VM (its NIC the VIF of the VM's port, bound to this chassis as
Nova's would be), without a nested dockerd: Docker's requests are sent as dockerd sends them.

The Docker network adopts the VM's Neutron network (macvlan containers live on the VM port's
network). Its pool ports and anchor are made unbound and marked by the VM's port
(kuryr.domain.ports.mine); a restarted daemon finds the same pool ports again by that mark in
the real Neutron; a container's macvlan, moved into its namespace, reaches a port of the
network and is reached from it; and the network's removal leaves no port, no pair on the VM
port, no device."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.binding.base import Binder
from kuryr.backends.binding.macvlan import MacvlanBinder
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.registry import Binders, load
from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron import Neutron
from kuryr.backends.state import State
from kuryr.config import BindingConfig, Config, NeutronConfig, PoolConfig
from kuryr.domain.ports.port import Port
from kuryr.driver import KuryrNetworkDriver, build
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import create_request, docker_id, neutron_client
from tests.netns import Namespaces, configure, link_names, move_link, namespaces_fixture, ping

pytestmark = pytest.mark.stack

namespaces = namespaces_fixture("wt15d-")
PREFIX = "wt15-nested-domain-"
POOL = PoolConfig(min=2, max=2, batch=2)
WAIT = 60.0


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.3)


class Vm:
    """The VM: its port on a network of its own, its NIC in a namespace; a peer port beside."""

    def __init__(self, neutron: Neutron, namespaces: Namespaces) -> None:
        self.neutron = neutron
        self.namespaces = namespaces
        self.ns = namespaces.new()
        self.made: list[str] = []
        self.network: dict[str, Any] = {}
        self.cidr = f"10.249.{secrets.randbelow(250)}.0/24"

    async def port(self, host: str, name: str) -> Port:
        raw = await self.neutron.create(
            "ports",
            {"network_id": self.network["id"], "name": PREFIX + name, "binding:host_id": host},
        )
        self.made.append(raw["id"])
        return Port.from_neutron(raw)

    async def kuryr_ports(self) -> list[Port]:
        found = await self.neutron.query("ports", {"network_id": self.network["id"]})
        ports = [p for p in map(Port.from_neutron, found) if p.id not in self.made]
        return [p for p in ports if not p.device_owner.startswith("network:")]  # Neutron's own

    async def pairs(self, vm_port: Port) -> set[str]:
        shown = await self.neutron.show("ports", vm_port.id) or {}
        return {pair["ip_address"] for pair in shown.get("allowed_address_pairs") or []}


@asynccontextmanager
async def nested_daemon(
    stack: StackFacts, state_dir: Path, vm_ns: str, nic: str
) -> AsyncIterator[KuryrNetworkDriver]:
    """The domain as ``kuryr serve`` builds it in the VM (binders made as load_nested makes
    them, in the VM's namespace)."""
    config = Config(
        state_dir=state_dir,
        neutron=NeutronConfig(auth_type="none", endpoint=stack.neutron_url, timeout=60.0),
        binding=BindingConfig(driver="macvlan", link_iface=nic),
        pool=POOL,
    )
    neutron = neutron_client(stack.neutron_url)
    netlink = Netlink(netns=vm_ns)
    vm_nic = VmNic(neutron, netlink, nic)
    binder = MacvlanBinder(neutron, netlink, vm_nic, State.in_memory())
    binders = Binders("wt15-vm", {}, {}, netlink, None, nested=binder, nic=vm_nic)
    domain, close = await build(config, neutron, binders)
    assert isinstance(domain.network, KuryrNetworkDriver)
    try:
        yield domain.network
    finally:
        await close()
        await binders.close()


async def test_a_nested_daemons_ports_are_marked_found_again_and_reached(
    stack: StackFacts, namespaces: Namespaces, tmp_path: Path
) -> None:
    neutron = neutron_client(stack.neutron_url)
    vm = Vm(neutron, namespaces)
    vm.network = await neutron.create("networks", {"name": PREFIX + secrets.token_hex(3)})
    host_binders = await load(BindingConfig())
    ovs: Binder = host_binders.for_vif_type("ovs")
    vifs = []
    did = docker_id()
    try:
        await neutron.create(
            "subnets", {"network_id": vm.network["id"], "ip_version": 4, "cidr": vm.cidr}
        )
        vm_port = await vm.port(stack.chassis_hostname, "vm")
        peer = await vm.port(stack.chassis_hostname, "peer")
        peer_ns = namespaces.new()
        for port, ns in ((vm_port, vm.ns), (peer, peer_ns)):
            vif = port.vif(secrets.token_hex(32), int(vm.network["mtu"]))
            await ovs.plug(vif, 15.0)
            vifs.append(vif)
            await move_link(vif.container_ifname, ns)
            await configure(ns, vif.container_ifname, port.ips[0], 24)
        nic = vifs[0].container_ifname
        mark = naming.host_description(naming.vm_host(vm_port.id))
        gateway = vm.cidr.replace(".0/24", ".1/32")
        request = create_request(
            did,
            vm.cidr,
            gateway,
            generic={"neutron.net.uuid": vm.network["id"]},
            address_space="LocalDefault",
        )

        async with nested_daemon(stack, tmp_path, vm.ns, nic) as kuryr:
            await kuryr.create_network(request)

            async def pool_wired() -> bool:
                pool = [p for p in await vm.kuryr_ports() if p.in_pool]
                return len(pool) == 2 and await vm.pairs(vm_port) == {
                    ip for p in pool for ip in p.ips
                }

            await until(pool_wired, "two pool ports made and plugged ahead")
            ports = await vm.kuryr_ports()
            assert {p.description for p in ports} == {mark}, "marked by the VM's port"
            assert {p.host for p in ports} == {""}, "bound to nothing"
            assert {p.device_owner for p in ports} == {naming.DEVICE_OWNER, naming.ANCHOR_OWNER}
            pool_ids = {p.id for p in ports if p.in_pool}

        async with nested_daemon(stack, tmp_path, vm.ns, nic) as kuryr:
            network = await kuryr.networks.get(did)
            pool = kuryr.pools.pool(network.subnets[0].id)
            assert pool is not None and set(pool.free) == pool_ids, "found again by the mark"
            port = Port.from_neutron(next(iter(pool.free.values())).port)
            endpoint_id = docker_id()
            await kuryr.create_endpoint(
                p.CreateEndpointRequest.model_validate(
                    {
                        "NetworkID": did,
                        "EndpointID": endpoint_id,
                        "Interface": {"Address": f"{port.ips[0]}/24"},
                    }
                )
            )
            joined = await kuryr.join(
                p.JoinRequest.model_validate(
                    {"NetworkID": did, "EndpointID": endpoint_id, "SandboxKey": "/x"}
                )
            )
            device = joined.interface_name.src_name
            container = namespaces.new()
            await move_link(device, container, vm.ns)
            await configure(container, device, port.ips[0], 24)

            inbound = ping(peer_ns, port.ips[0])
            outbound = ping(container, peer.ips[0])

            assert inbound.returncode == 0, inbound.stdout + inbound.stderr
            assert outbound.returncode == 0, outbound.stdout + outbound.stderr
            await move_link(device, vm.ns, container)
            gone = p.EndpointRequest.model_validate({"NetworkID": did, "EndpointID": endpoint_id})
            await kuryr.leave(gone)
            await kuryr.delete_endpoint(gone)
            await kuryr.delete_network(p.NetworkRequest(network_id=did))
            await kuryr.removals.drained()

            async def nothing_left() -> bool:
                return await vm.kuryr_ports() == [] and await vm.pairs(vm_port) == set()

            await until(nothing_left, "every port of the VM and every pair gone")
        left = {name for name in await link_names(vm.ns) if name.startswith("t_c")}
        assert left == {nic}, "no macvlan left beside the VM's NIC"
    finally:
        for vif in vifs:
            await ovs.unplug(vif)
        for raw in await neutron.query("ports", {"network_id": vm.network["id"]}):
            if not str(raw.get("device_owner", "")).startswith("network:"):
                await neutron.delete("ports", raw["id"])
        await neutron.delete("networks", vm.network["id"])
        await host_binders.close()
