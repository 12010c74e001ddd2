"""The nested binders' devices (Netlink.create_sublink) in the real kernel, all inside
throwaway namespaces: a VM namespace whose NIC ``eth0`` is a veth to a namespace standing in
for the hypervisor. A VLAN subinterface moved into a container namespace carries its
traffic tagged (the hypervisor end's own subinterface of that id answers it, as ovn-controller
untags a subport's traffic); two macvlans in bridge mode reach each other. No stack is used.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from kuryr.backends.netlink import Netlink
from tests.netns import Namespaces, configure, move_link, namespaces_fixture, ping

namespaces = namespaces_fixture("wt15n-")

VM_MAC = "fa:16:3e:15:00:01"


@dataclass
class Vm:
    ns: str
    hypervisor: str
    netlink: Netlink
    nic_index: int


@pytest.fixture
async def vm(namespaces: Namespaces) -> AsyncIterator[Vm]:
    vm_ns, hv_ns = namespaces.new(), namespaces.new()
    ipr = AsyncIPRoute(netns=vm_ns)
    try:
        await ipr.link("add", ifname="eth0", kind="veth", address=VM_MAC, peer={"ifname": "hv0"})
        await move_link("hv0", hv_ns, vm_ns)
        index = (await ipr.link_lookup(ifname="eth0"))[0]
        await ipr.link("set", index=index, state="up")
    finally:
        ipr.close()
    hv = AsyncIPRoute(netns=hv_ns)
    try:
        await hv.link("set", index=(await hv.link_lookup(ifname="hv0"))[0], state="up")
    finally:
        hv.close()
    netlink = Netlink(netns=vm_ns)
    try:
        yield Vm(vm_ns, hv_ns, netlink, index)
    finally:
        await netlink.close()


async def vlans_or_skip(vm: Vm) -> None:
    """This machine's kernel (the CI's) has no 802.1Q support: say so rather than fail."""
    ipr = AsyncIPRoute(netns=vm.ns)
    try:
        await ipr.link("add", ifname="probe.1", kind="vlan", link=vm.nic_index, vlan_id=1)
    except NetlinkError as exc:
        if exc.code == errno.EOPNOTSUPP:
            pytest.skip("this kernel has no 802.1Q (8021q) VLAN devices")
        raise
    finally:
        ipr.close()
    await vm.netlink.delete_link("probe.1")


async def test_a_vlan_subinterface_carries_its_container_traffic_tagged(
    vm: Vm, namespaces: Namespaces
) -> None:
    await vlans_or_skip(vm)
    await vm.netlink.create_sublink("t_cabc", vm.nic_index, "fa:16:3e:15:00:02", 1400, 42)

    link = await vm.netlink.link("t_cabc")
    assert link is not None
    assert (link.kind, link.vlan_id, link.peer) == ("vlan", 42, vm.nic_index)
    assert (link.mac, link.mtu, link.up) == ("fa:16:3e:15:00:02", 1400, False)
    hv = AsyncIPRoute(netns=vm.hypervisor)
    try:
        parent = (await hv.link_lookup(ifname="hv0"))[0]
        await hv.link("add", ifname="hv0.42", kind="vlan", link=parent, vlan_id=42)
    finally:
        hv.close()
    await configure(vm.hypervisor, "hv0.42", "10.15.42.1", 24)
    container = namespaces.new()
    await move_link("t_cabc", container, vm.ns)
    await configure(container, "t_cabc", "10.15.42.2", 24)

    assert ping(container, "10.15.42.1").returncode == 0


async def test_a_repeated_create_replaces_the_device(vm: Vm) -> None:
    await vlans_or_skip(vm)
    await vm.netlink.create_sublink("t_cabc", vm.nic_index, "fa:16:3e:15:00:02", 1400, 42)
    await vm.netlink.create_sublink("t_cabc", vm.nic_index, "fa:16:3e:15:00:03", 1400, 43)

    link = await vm.netlink.link("t_cabc")
    assert link is not None and (link.vlan_id, link.mac) == (43, "fa:16:3e:15:00:03")
    assert await vm.netlink.delete_link("t_cabc")
    assert not await vm.netlink.delete_link("t_cabc")


async def test_two_macvlans_of_the_nic_reach_each_other(vm: Vm, namespaces: Namespaces) -> None:
    for name, mac in (("t_cone", "fa:16:3e:15:00:11"), ("t_ctwo", "fa:16:3e:15:00:12")):
        await vm.netlink.create_sublink(name, vm.nic_index, mac, 1400)
        link = await vm.netlink.link(name)
        assert link is not None
        assert (link.kind, link.peer, link.mac, link.vlan_id) == (
            "macvlan",
            vm.nic_index,
            mac,
            None,
        )
    one, two = namespaces.new(), namespaces.new()
    await move_link("t_cone", one, vm.ns)
    await move_link("t_ctwo", two, vm.ns)
    await configure(one, "t_cone", "10.15.43.11", 24)
    await configure(two, "t_ctwo", "10.15.43.12", 24)

    assert ping(one, "10.15.43.12").returncode == 0


async def test_concurrent_surveys_of_one_socket_all_answer(vm: Vm) -> None:
    """A reconciliation pass and a VIF's unplug survey the links at once through the one
    socket (seen live: the unplug failed with EBUSY); each survey gets its answer."""
    for i in range(4):
        name = f"t_c{i:011d}"
        await vm.netlink.create_sublink(name, vm.nic_index, f"fe:16:3e:15:00:{i + 10}", 1442)
        await vm.netlink.set_alias(name, f"kuryr-port:{i}")

    found = await asyncio.gather(
        *(vm.netlink.aliased("kuryr-port:") for _ in range(20)),
        *(vm.netlink.names("t_c") for _ in range(20)),
    )

    assert all(len(f) == 4 for f in found)
