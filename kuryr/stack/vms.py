"""Simulated VMs ``vm1`` … ``vmN`` on the machine's host (issue 15: containers inside Nova
VMs, Kuryr in nested mode): each one a simulated host's namespace, relay, dockerd and Kuryr
daemon (:mod:`kuryr.stack.simdocker`) without a chassis, whose NIC is plugged into the
machine's br-int for a trunk's parent port (:mod:`kuryr.stack.vmnet`). The VM reaches
Neutron only through the relay into its namespace. A ``vlan`` VM also runs its own switch
(:mod:`kuryr.stack.vmswitch`). The caller holds the stack lock.

``up`` adds or repairs the VMs it is asked for and leaves others alone; ``remove`` takes one
away for good with what it held (its containers and Kuryr networks, its Kuryr ports, its
trunk and port, its namespace, link, cgroups and files)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from kuryr.ops import admin_api
from kuryr.stack import hosts, proc, teardown, vmnet, vmplan
from kuryr.stack.errors import StackError
from kuryr.stack.hosts import Row
from kuryr.stack.layout import Layout
from kuryr.stack.simdocker import SimDaemon, SimDocker, SimRelay
from kuryr.stack.vmplan import NIC, VLAN, VM_BRIDGE, SimVm
from kuryr.stack.vmswitch import VmSwitch


def binding_lines(vm: SimVm) -> str:
    """The nested mode in the VM daemon's [binding] section. A ``vlan`` VM plugs containers
    into its own switch (vmswitch): ``integration_bridge`` names it, and the daemon's
    ``ovsdb_connection`` is the VM's OVS."""
    lines = f"driver = {vm.mode}\nlink_iface = {NIC}\n"
    if vm.mode == VLAN:
        lines += f"vlan_device = ovs\nintegration_bridge = {VM_BRIDGE}\n"
    return lines


@dataclass(frozen=True)
class Parts:
    relay: SimRelay
    daemon: SimDaemon
    docker: SimDocker
    switch: VmSwitch | None


def parts(layout: Layout, vm: SimVm) -> Parts:
    return Parts(
        SimRelay(vm),
        SimDaemon(vm, tx_checksum_offload=vm.mode != VLAN, binding=binding_lines(vm)),
        SimDocker(vm, hosts.storage_driver(layout)),
        VmSwitch(vm) if vm.mode == VLAN else None,
    )


def up(layout: Layout, count: int, choice: str, chassis: str) -> list[Row]:
    """Start or repair vm1 … vm<count>; a failing VM does not keep the next from starting."""
    planned = vmplan.planned(layout.root, count, choice)
    network = vmnet.ensure_network()
    failed: dict[str, str] = {}
    for vm in planned:
        try:
            start(layout, vm, network, chassis)
        except StackError as exc:
            failed[vm.name] = exc.reason
    return [Row(r.name, False, failed[r.name]) if r.name in failed else r for r in status(layout)]


def start(layout: Layout, vm: SimVm, network: dict[str, object], chassis: str) -> None:
    for directory in (vm.logs, vm.runfs, vm.plugin_specs, vm.pidfile("x").parent):
        directory.mkdir(parents=True, exist_ok=True)
    vm.mode_file.write_text(f"{vm.mode}\n")
    port = vmnet.ensure_port(vm, network, chassis)
    vmnet.plug_nic(vm, port)
    p = parts(layout, vm)
    if p.switch is not None:
        p.switch.start()
    p.relay.start()
    # Before dockerd, which restarts containers with a restart policy through it.
    p.daemon.start()
    p.docker.start()


def status(layout: Layout) -> list[Row]:
    return [check(layout, vm) for vm in vmplan.present(layout.root)]


def check(layout: Layout, vm: SimVm) -> Row:
    if not vm.netns_path.exists():
        return Row(vm.name, False, f"network namespace {vm.netns} is missing")
    if not vmnet.installed(vm):
        return Row(vm.name, False, f"its NIC is not plugged into br-int ({vm.host_link})")
    p = parts(layout, vm)
    for part in (p.switch, p.relay, p.daemon, p.docker):
        if part is None:
            continue
        ok, detail = part.check()
        if not ok:
            return Row(vm.name, False, detail)
    port = vmnet.recorded(vm).get("port_id", "?")
    return Row(vm.name, True, f"{vm.mode} VM on port {port}, {vm.docker_host}")


def remove(layout: Layout, vm: SimVm) -> list[StackError]:
    """Take the VM away for good; every step is attempted, the errors met are returned."""
    p = parts(layout, vm)
    steps = [
        p.docker.clear,
        p.docker.stop,
        p.daemon.stop,
        p.relay.stop,
        *([p.switch.stop] if p.switch is not None else []),
        # Subports first: Neutron deletes no port that is one.
        lambda: vmnet.delete_port(vm),
        lambda: vmnet.forget_kuryr_ports(vm),
        # Ports made by a daemon from before nested ports were marked: bound to the VM.
        lambda: hosts.forget_ports(vm),
        lambda: _terminate(hosts.members(vm)),
        lambda: vmnet.unplug_nic(vm),
        lambda: hosts.remove_cgroups(vm),
    ]
    return teardown.remove_one(steps, vm.root)


def _terminate(pids: list[int]) -> None:
    for pid in pids:
        proc.terminate(pid, timeout=5)


def remove_all(layout: Layout) -> list[StackError]:
    """Remove every VM, then the VMs' network."""
    directory = vmplan.vms_dir(layout.root)
    if not directory.is_dir():
        return []
    return teardown.remove_members(
        vmplan.present(layout.root),
        functools.partial(remove, layout),
        vmnet.delete_network,
        directory,
    )


def describe(layout: Layout, chassis: str) -> list[dict[str, object]]:
    """What ``kuryr stack hosts`` prints of the VMs: hosts of kind ``vm`` on the machine's
    chassis, each with its nested mode, NIC, Neutron port and trunk."""
    rows: list[dict[str, object]] = []
    for vm in vmplan.present(layout.root):
        ids = vmnet.recorded(vm)
        row: dict[str, object] = {
            "name": vm.name,
            "kind": "vm",
            "chassis": chassis,
            "docker_host": vm.docker_host,
            "namespace": vm.netns,
            "underlay_ip": "",
            "main": False,
            "mode": vm.mode,
            "nic": NIC,
            "host_link": vm.host_link,
            "port_id": ids.get("port_id", ""),
            "trunk_id": ids.get("trunk_id", ""),
            "plugin_socket": str(vm.plugin_sock),
            "admin_socket": str(admin_api.socket_path(vm.state_dir)),
            "config": str(vm.config),
            "pids": hosts.members(vm),
        }
        if vm.mode == VLAN:
            row["ovs_db"] = f"unix:{vm.ovs_sock}"
        rows.append(row)
    return rows
