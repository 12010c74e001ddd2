"""Nested ``macvlan`` mode on the real stack, without a nested dockerd: a namespace stands for
the Nova VM, its NIC the container end of a VIF the host's OVS binder plugs for the VM's
Neutron port (bound to this chassis, as Nova's would be); MacvlanBinder, working in the VM's
namespace, plugs two container ports (made unbound, as nested Kuryr's are) as macvlans of
that NIC, moved into container namespaces. The containers reach each other inside the VM,
and reach a VM-like port of the same network through OVN (and are reached from it) because
the VM port's allowed_address_pairs carry their addresses with their devices' MACs, which are
not their ports' (kuryr.backends.binding.macvlan: with the port's MAC, OVN sent the network's
frames for it to the container port's own, unclaimed, virtual port: issue 15, finding 3)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kuryr.backends.binding.base import Vif
from kuryr.backends.binding.macvlan import MacvlanBinder, device_mac
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.registry import Binders
from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron import Neutron
from kuryr.backends.state import State
from kuryr.domain.ports.port import Port
from tests.integration.domain_helpers import neutron_client
from tests.integration.host_binders import host_binders_fixture
from tests.netns import Namespaces, configure, move_link, namespaces_fixture, ping

pytestmark = pytest.mark.stack
host_binders = host_binders_fixture()

namespaces = namespaces_fixture("wt15m-")
PREFIX = "wt15-macvlan-"
READY = 15.0


@dataclass
class Lan:
    neutron: Neutron
    host: str
    network: dict[str, Any]
    subnet: dict[str, Any]
    ports: list[str] = field(default_factory=list)

    async def port(self, bound: bool) -> Port:
        attrs: dict[str, Any] = {
            "network_id": self.network["id"],
            "name": PREFIX + secrets.token_hex(3),
            "device_owner": "compute:wt15",
        }
        if bound:
            attrs["binding:host_id"] = self.host
        raw = await self.neutron.create("ports", attrs)
        self.ports.append(raw["id"])
        return Port.from_neutron(raw)

    def vif(self, port: Port) -> Vif:
        return port.vif(secrets.token_hex(32), int(self.network["mtu"]))


@pytest.fixture
async def lan(stack: Any) -> AsyncIterator[Lan]:
    neutron = neutron_client(stack.neutron_url)
    net = await neutron.create("networks", {"name": PREFIX + secrets.token_hex(3)})
    cidr = f"10.252.{secrets.randbelow(250)}.0/24"
    subnet = await neutron.create(
        "subnets", {"network_id": net["id"], "ip_version": 4, "cidr": cidr}
    )
    made = Lan(neutron, stack.chassis_hostname, net, subnet)
    try:
        yield made
    finally:
        for port_id in made.ports:
            await neutron.delete("ports", port_id)
        await neutron.delete("networks", net["id"])


async def plug_into(binders: Binders, lan: Lan, port: Port, namespace: str) -> Vif:
    """A port bound to this chassis, its VIF's container end moved into ``namespace`` and
    given the port's address (a VM's NIC, or a VM-like port's)."""
    vif = lan.vif(port)
    await binders.for_vif_type("ovs").plug(vif, READY)
    await move_link(vif.container_ifname, namespace)
    await configure(namespace, vif.container_ifname, port.ips[0], 24)
    return vif


async def test_vm_containers_on_macvlans_reach_each_other_and_the_network(
    lan: Lan, host_binders: Binders, namespaces: Namespaces
) -> None:
    vm_ns, peer_ns = namespaces.new(), namespaces.new()
    vm_port = await lan.port(bound=True)
    vm_vif = await plug_into(host_binders, lan, vm_port, vm_ns)
    peer = await lan.port(bound=True)
    peer_vif = await plug_into(host_binders, lan, peer, peer_ns)
    netlink = Netlink(netns=vm_ns)
    binder = MacvlanBinder(
        lan.neutron,
        netlink,
        VmNic(lan.neutron, netlink, vm_vif.container_ifname),
        State.in_memory(),
    )
    containers: list[tuple[str, Port, Vif]] = []
    try:
        assert ping(peer_ns, vm_port.ips[0]).returncode == 0, "the VM itself is on the network"
        for _ in range(2):
            port = await lan.port(bound=False)
            vif = lan.vif(port)
            await binder.plug(vif, READY)
            assert await binder.ready(vif)
            container = namespaces.new()
            await move_link(vif.container_ifname, container, vm_ns)
            await configure(container, vif.container_ifname, port.ips[0], 24)
            containers.append((container, port, vif))
        shown = await lan.neutron.show("ports", vm_port.id) or {}
        pairs = {(p["ip_address"], p["mac_address"]) for p in shown["allowed_address_pairs"]}
        assert pairs == {(p.ips[0], device_mac(p.mac_address)) for _, p, _ in containers}
        (c1, _, v1), (_, p2, _) = containers

        inside = ping(c1, p2.ips[0])
        inbound = ping(peer_ns, p2.ips[0])
        outside = ping(c1, peer.ips[0])

        assert inside.returncode == 0, inside.stdout
        assert inbound.returncode == 0, inbound.stdout
        assert outside.returncode == 0, outside.stdout
        await move_link(v1.container_ifname, vm_ns, c1)
        await binder.unplug(v1)
        shown = await lan.neutron.show("ports", vm_port.id) or {}
        assert [p["ip_address"] for p in shown["allowed_address_pairs"]] == [p2.ips[0]]
    finally:
        for _, _, vif in containers:
            # Best effort: the ports are deleted after, and a VM port's pairs go with it.
            with contextlib.suppress(Exception):
                await binder.unplug(vif)
        await netlink.close()
        for vif in (vm_vif, peer_vif):
            await host_binders.for_vif_type("ovs").unplug(vif)
