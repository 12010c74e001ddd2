"""Nested mode's keys: Kuryr's ``[binding] driver`` and ``link_iface``, and kuryr-lib's and
kuryr-libnetwork's names for the same choice."""

from __future__ import annotations

import pytest

from kuryr import config
from kuryr.config import BindingConfig


def parsed(text: str) -> BindingConfig:
    parser = config.new_parser()
    parser.read_string(text)
    return config.parse(parser).binding


def test_the_default_is_the_host_br_int() -> None:
    binding = parsed("")
    assert (binding.driver, binding.nested, binding.link_iface) == ("veth", False, "")


@pytest.mark.parametrize("driver", ["vlan", "macvlan"])
def test_kuryr_names_a_nested_mode(driver: str) -> None:
    binding = parsed(f"[binding]\ndriver = {driver}\nlink_iface = ens3\n")
    assert (binding.driver, binding.nested, binding.link_iface) == (driver, True, "ens3")


def test_kuryr_libnetwork_nested_vlan_config_is_accepted() -> None:
    binding = parsed(
        "[DEFAULT]\nport_driver = kuryr_libnetwork.port_driver.drivers.vlan\n"
        "[binding]\ndefault_driver = kuryr.lib.binding.drivers.vlan\nlink_iface = eth0\n"
    )
    assert (binding.driver, binding.link_iface) == ("vlan", "eth0")


def test_kuryr_libnetwork_nested_macvlan_config_is_accepted() -> None:
    binding = parsed(
        "[DEFAULT]\nport_driver = kuryr_libnetwork.port_driver.drivers.nested\n"
        "[binding]\ndriver = kuryr.lib.binding.drivers.macvlan\nlink_iface = eth0\n"
    )
    assert binding.driver == "macvlan"


def test_the_port_driver_alone_chooses_its_binding() -> None:
    binding = parsed(
        "[DEFAULT]\nport_driver = kuryr_libnetwork.port_driver.drivers.vlan\n"
        "[binding]\nlink_iface = eth0\n"
    )
    assert binding.driver == "vlan"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[binding]\ndriver = vlan\n", "needs link_iface"),
        ("[binding]\ndriver = vxlan\nlink_iface = eth0\n", "expected one of veth, vlan, macvlan"),
        ("[binding]\ndriver = ipvlan\nlink_iface = eth0\n", "ipvlan is not supported"),
        (
            "[binding]\ndriver = vlan\ndefault_driver = kuryr.lib.binding.drivers.macvlan\n",
            "disagree",
        ),
        (
            "[DEFAULT]\nport_driver = kuryr_libnetwork.port_driver.drivers.vlan\n"
            "[binding]\ndriver = macvlan\nlink_iface = eth0\n",
            "does not work with",
        ),
        ("[DEFAULT]\nport_driver = sriov\n", "port_driver = 'sriov'"),
    ],
)
def test_contradictions_are_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parsed(text)


def test_the_environment_sets_nested_mode() -> None:
    loaded = config.load(
        None,
        environ={
            "KURYR_CONFIG": "/dev/null",
            "KURYR_BINDING_DRIVER": "vlan",
            "KURYR_BINDING_LINK_IFACE": "eth1",
        },
    )
    assert (loaded.binding.driver, loaded.binding.link_iface) == ("vlan", "eth1")
