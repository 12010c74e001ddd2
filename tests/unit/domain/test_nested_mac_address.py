"""``docker run --mac-address X`` in nested mode, on the domain as kuryr.driver.build makes
it, against the in-memory Neutron and VM namespace (tests.fakes.nested_vm).

As on a host, the container's device carries X (Docker sets it too). In ``vlan`` mode the
subport's MAC is X as well. In ``macvlan`` mode the VM port's pair carries X and the
container's port X's image (kuryr.backends.binding.macvlan.device_mac): never X itself,
which would give OVN two ports of one MAC (the module's docstring there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr.backends.binding.macvlan import device_mac
from kuryr.config import PoolConfig
from tests.fakes.daemon import Daemon, Net, daemon, eventually
from tests.fakes.nested_vm import NestedVm

# Locally administered (Docker's own style), and one of a vendor's block: both are honoured.
MACS = ("02:42:0a:15:00:07", "00:16:3e:15:00:08")


def test_device_mac_is_its_own_inverse_and_never_the_mac_it_maps() -> None:
    assert device_mac("fa:16:3e:01:02:03") == "fe:16:3e:01:02:03"
    for mac in (*MACS, "fa:16:3e:01:02:03", "FE:16:3E:AA:BB:CC"):
        image = device_mac(mac)
        assert image != mac.lower()
        assert device_mac(image) == mac.lower()
        assert int(image[:2], 16) & 1 == 0, "a unicast MAC maps to a unicast MAC"


async def _start(d: Daemon, net: Net, mac: str) -> tuple[str, str]:
    """``docker run --mac-address mac``: RequestAddress (Kuryr IPAM), CreateEndpoint, Join;
    the container's address and the name of its device."""
    address = await d.request_address(net.pool_id) if net.pool_id != net.cidr else "10.71.0.9"
    container = await d.create_endpoint(net, address, mac=mac)
    assert container.interface is None or not container.interface.mac_address, (
        "Docker's MAC echoed back: Docker would roll the endpoint back"
    )
    await d.join(container)
    port = d.port_holding(net, address)
    assert port is not None
    return address, f"t_c{port['id'][:11]}"


@pytest.mark.parametrize("mac", MACS)
@pytest.mark.parametrize("ipam", ["kuryr", "docker"])
async def test_a_macvlan_container_gets_the_mac_it_asks_for(
    tmp_path: Path, mac: str, ipam: str
) -> None:
    vm = NestedVm(macvlan=True)
    pools = PoolConfig(min=2, max=4, batch=2)
    async with daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network() if ipam == "kuryr" else await d.docker_network("10.71.0.0/24")
        if ipam == "kuryr":
            await eventually(lambda: len(vm.pairs()) == 2, "two pool ports plugged ahead")
        address, device = await _start(d, net, mac)

        port = d.port_holding(net, address)
        assert port is not None and port["mac_address"] == device_mac(mac)
        assert vm.links.links[device].mac == mac
        assert (address, mac) in vm.pairs()
        # The pool port taken was plugged ahead with its own MAC: that pair went with it.
        assert not [p for p in vm.pairs() if p[0] == address and p[1] != mac]


async def test_a_vlan_container_and_its_subport_get_the_mac_it_asks_for(tmp_path: Path) -> None:
    vm = NestedVm()
    pools = PoolConfig(min=2, max=4, batch=2)
    async with daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        address, device = await _start(d, net, MACS[0])

        port = d.port_holding(net, address)
        assert port is not None and port["mac_address"] == MACS[0]
        assert port["id"] in vm.subports()
        assert vm.links.links[device].mac == MACS[0]
