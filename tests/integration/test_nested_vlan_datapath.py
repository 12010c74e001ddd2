"""Nested ``vlan`` mode's data path on the real stack, the hypervisor's half: a namespace
stands for the Nova VM, its NIC the container end of the VIF of the VM's port (bound to this
chassis, a trunk's parent); a container port as nested Kuryr makes it (unbound, marked by the
VM's port: kuryr.domain.ports.mine), or bound to the VM's name (which no chassis has: refused
by ovn-controller), becomes a subport with VLAN id 10. A VM-like port of the same
network then pings the container's address: ovn-controller must send the traffic to the VM's
NIC tagged 10, and take the tagged answer as the subport's. This machine's kernel has no
802.1Q devices, so the container behind ``eth0.10`` is played in userspace
(tests/vlan_responder.py)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from kuryr.backends.binding.registry import Binders
from kuryr.backends.neutron import Neutron
from kuryr.domain.ports import desired
from kuryr.domain.ports.mine import Mark
from kuryr.domain.ports.port import Port
from tests.integration.domain_helpers import neutron_client
from tests.integration.host_binders import host_binders_fixture, plug_into
from tests.netns import Namespaces, namespaces_fixture, ping
from tests.vlan_responder import VlanResponder

pytestmark = pytest.mark.stack
host_binders = host_binders_fixture()

namespaces = namespaces_fixture("wt15v-")
PREFIX = "wt15-vlan-"
VLAN = 10


NO_CHASSIS = "wt15-vm-no-chassis"


@pytest.mark.parametrize(
    "host",
    [
        "",
        pytest.param(
            NO_CHASSIS,
            marks=pytest.mark.xfail(
                strict=True,
                reason="ovn-controller claims no subport whose binding:host_id is a host "
                "without a chassis (requested-chassis): the answer is dropped",
            ),
        ),
    ],
)
async def test_a_subport_gets_its_traffic_tagged_on_the_vm_nic(
    stack: Any, host_binders: Binders, namespaces: Namespaces, host: str
) -> None:
    neutron: Neutron = neutron_client(stack.neutron_url)
    name = PREFIX + secrets.token_hex(3)
    net = await neutron.create("networks", {"name": name})
    made: list[str] = []
    trunk: dict[str, Any] = {}
    vifs = []
    ovs = host_binders.for_vif_type("ovs")
    try:
        cidr = f"10.254.{secrets.randbelow(250)}.0/24"
        await neutron.create("subnets", {"network_id": net["id"], "ip_version": 4, "cidr": cidr})

        async def bound_port() -> Port:
            raw = await neutron.create(
                "ports",
                {"network_id": net["id"], "name": name, "binding:host_id": stack.chassis_hostname},
            )
            made.append(raw["id"])
            return Port.from_neutron(raw)

        vm_port, peer = await bound_port(), await bound_port()
        vm_ns, peer_ns = namespaces.new(), namespaces.new()
        for port, ns in ((vm_port, vm_ns), (peer, peer_ns)):
            vifs.append(await plug_into(ovs, port, ns, int(net["mtu"])))
        trunk = await neutron.create("trunks", {"port_id": vm_port.id, "name": name})
        attrs = {"network_id": net["id"], "name": name, "device_owner": "compute:kuryr"}
        if host:
            attrs["binding:host_id"] = host
        else:  # the body nested Kuryr sends, its address left to Neutron
            attrs = desired.create_body(net["id"], [], Mark("", vm_port.id), name)
            del attrs["fixed_ips"]
        raw = await neutron.create("ports", attrs)
        made.append(raw["id"])
        container = Port.from_neutron(raw)
        await neutron.add_subports(
            trunk["id"],
            [{"port_id": container.id, "segmentation_type": "vlan", "segmentation_id": VLAN}],
        )
        await asyncio.sleep(2)  # ovn-controller installs the subport's flows

        nic = vifs[0].container_ifname
        with VlanResponder(vm_ns, nic, VLAN, container.ips[0], container.mac_address) as vm:
            done = ping(peer_ns, container.ips[0], count=5)
            print(f"frames seen on the VM NIC by VLAN id: {dict(vm.seen)}; answered {vm.answered}")

        assert vm.seen[VLAN] > 0, "nothing reached the VM NIC tagged with the subport's id"
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        if trunk:
            await neutron.delete("trunks", trunk["id"])
        for vif in vifs:
            await ovs.unplug(vif)
        for port_id in made:
            await neutron.delete("ports", port_id)
        await neutron.delete("networks", net["id"])
