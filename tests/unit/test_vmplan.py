"""The plan of simulated VMs: names, nested modes, links, paths, and their daemons' config."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr.config import load as load_config
from kuryr.stack import vmplan, vms
from kuryr.stack.hostplan import PlanError
from kuryr.stack.simdocker import SimDaemon


def test_vms_are_numbered_from_one() -> None:
    assert vmplan.names(2) == ["vm1", "vm2"]


@pytest.mark.parametrize("count", [0, -1, vmplan.MAX_VMS + 1])
def test_vm_counts_outside_the_plan_are_refused(count: int) -> None:
    with pytest.raises(PlanError, match=f"between 1 and {vmplan.MAX_VMS}, not {count}"):
        vmplan.names(count)


@pytest.mark.parametrize("name", ["vm0", "vm", "h2", "vm10", "VM1", " vm1"])
def test_names_outside_the_plan_are_refused(name: str) -> None:
    with pytest.raises(PlanError):
        vmplan.index_of(name)


def test_mixed_mode_alternates_macvlan_and_vlan() -> None:
    modes = [vmplan.mode_of(i, vmplan.MIXED) for i in range(1, 5)]
    assert modes == ["macvlan", "vlan", "macvlan", "vlan"]


@pytest.mark.parametrize("mode", vmplan.MODES)
def test_a_single_mode_applies_to_every_vm(mode: str) -> None:
    assert {vmplan.mode_of(i, mode) for i in range(1, 5)} == {mode}


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(PlanError, match="ipvlan"):
        vmplan.mode_of(1, "ipvlan")


def test_each_vm_has_its_own_names_and_paths(tmp_path: Path) -> None:
    vm1, vm2 = vmplan.planned(tmp_path, 2, vmplan.MIXED)
    assert (vm1.name, vm1.netns, vm1.host_link, vm1.port_name, vm1.mode) == (
        "vm1",
        "kuryr-vm1",
        "kvm-vm1",
        "kuryr-stack-vm1",
        "macvlan",
    )
    assert vm2.mode == "vlan"
    assert vm1.root == tmp_path / "vms" / "vm1"
    assert vm1.docker_host == f"unix://{tmp_path}/vms/vm1/run/docker.sock"
    # A link name the kernel takes (IFNAMSIZ 16 with the NUL).
    assert all(len(v.host_link) <= 15 for v in vmplan.planned(tmp_path, vmplan.MAX_VMS, "vlan"))


def test_a_vm_keeps_the_mode_it_was_made_with(tmp_path: Path) -> None:
    (vm1,) = vmplan.planned(tmp_path, 1, "vlan")
    vm1.root.mkdir(parents=True)
    vm1.mode_file.write_text("vlan\n")
    assert [v.mode for v in vmplan.planned(tmp_path, 2, "macvlan")] == ["vlan", "macvlan"]
    assert vmplan.present(tmp_path) == [vm1]


def test_no_vms_before_the_first_up(tmp_path: Path) -> None:
    assert vmplan.present(tmp_path) == []


@pytest.mark.parametrize("mode", vmplan.MODES)
def test_the_vm_daemon_config_is_nested_mode_on_the_nic(tmp_path: Path, mode: str) -> None:
    (vm,) = vmplan.planned(tmp_path, 1, mode)
    config = tmp_path / "kuryr.conf"
    daemon = SimDaemon(vm, tx_checksum_offload=True, binding=vms.binding_lines(vm))
    config.write_text(daemon.config_text())
    loaded = load_config(config)
    assert loaded.binding.driver == mode
    assert loaded.binding.link_iface == vmplan.NIC
    assert loaded.binding.host == "vm1"
    assert loaded.socket == vm.plugin_sock


def test_a_vlan_vm_plugs_containers_into_its_own_bridge(tmp_path: Path) -> None:
    (vm,) = vmplan.planned(tmp_path, 1, "vlan")
    config = tmp_path / "kuryr.conf"
    config.write_text(SimDaemon(vm, binding=vms.binding_lines(vm)).config_text())
    binding = load_config(config).binding
    assert (binding.vlan_device, binding.integration_bridge) == ("ovs", vmplan.VM_BRIDGE)
    assert binding.ovsdb_connection == f"unix:{vm.ovs_sock}"
