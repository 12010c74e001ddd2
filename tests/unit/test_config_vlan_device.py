"""``[binding] vlan_device``: vlan mode's container device, the NIC's 802.1Q subinterface or
an access port of an OVS bridge on the NIC (a VM whose kernel has no 802.1Q)."""

from __future__ import annotations

import pytest

from kuryr import config
from kuryr.config import BindingConfig


def parsed(text: str) -> BindingConfig:
    parser = config.new_parser()
    parser.read_string(text)
    return config.parse(parser).binding


def test_vlan_mode_uses_the_nics_subinterfaces_by_default() -> None:
    assert parsed("[binding]\ndriver = vlan\nlink_iface = eth0\n").vlan_device == "sublink"


def test_vlan_mode_can_use_an_ovs_bridge_on_the_nic() -> None:
    binding = parsed(
        "[binding]\ndriver = vlan\nlink_iface = eth0\nvlan_device = OVS\n"
        "integration_bridge = br-vm\n"
    )
    assert (binding.vlan_device, binding.integration_bridge) == ("ovs", "br-vm")


@pytest.mark.parametrize("driver", ["veth", "macvlan"])
def test_vlan_device_ovs_is_refused_outside_vlan_mode(driver: str) -> None:
    with pytest.raises(ValueError, match="applies to driver = vlan only"):
        parsed(f"[binding]\ndriver = {driver}\nlink_iface = eth0\nvlan_device = ovs\n")


def test_an_unknown_vlan_device_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of sublink, ovs"):
        parsed("[binding]\ndriver = vlan\nlink_iface = eth0\nvlan_device = bridge\n")
