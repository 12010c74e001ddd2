"""The plan of the simulated VMs ``vm1`` … ``vmN`` (issue 15, nested mode): names, nested
modes, link names and where each VM keeps its files. Pure: nothing here touches the machine.

A simulated VM is a simulated host (:class:`kuryr.stack.hostplan.SimHost`: a network
namespace with its own dockerd and Kuryr daemon, its files under ``<stack>/vms/<name>``)
without a chassis of its own. Its one NIC, ``eth0``, is the VM end of a veth whose other end
is a port of the machine's br-int bound to a Neutron trunk's parent port, as Nova plugs a
VM; its Kuryr daemon runs in nested mode on that NIC.

Nested modes: ``macvlan`` (containers on macvlan devices of the NIC, their addresses in the
parent port's allowed address pairs) and ``vlan`` (containers on trunk subports). This
kernel has no 802.1Q, so a ``vlan`` VM carries a userspace OVS bridge (``br-vm``) with the
NIC as its uplink; a container's device is a veth whose VM end is an access port of that
bridge with its subport's VLAN id (kuryr.backends.binding.vlan_ovs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kuryr.stack.hostplan import PlanError, SimHost

MACVLAN = "macvlan"
VLAN = "vlan"
MODES = (MACVLAN, VLAN)
# ``--vm-mode mixed`` (the default): vm1 macvlan, vm2 vlan, vm3 macvlan, …
MIXED = "mixed"
MODE_CHOICES = (MIXED, *MODES)
# About 200 MB each (dockerd, containerd, a Kuryr daemon, in vlan mode an OVS).
MAX_VMS = 4
NIC = "eth0"
VM_BRIDGE = "br-vm"
# The stack's Neutron network of the VMs' ports, and a subnet the stack's other users avoid
# (the default pools are 10.10.0.0/16 and a ULA; the e2e tests draw from 10.64/10.65).
NETWORK = "kuryr-stack-vms"
SUBNET_CIDR = "10.99.0.0/24"
# A port that looks like a Nova VM's to Neutron, never like one of Kuryr's.
DEVICE_OWNER = "compute:kuryr-stack-vm"
# The NIC leaves room for a VLAN tag above the network's MTU (geneve: 1442).
NIC_MTU = 1500
_NAME = re.compile(rf"^vm([1-{MAX_VMS}])$")


@dataclass(frozen=True)
class SimVm(SimHost):
    """One simulated VM ``vm<index>`` and its nested mode."""

    mode: str = MACVLAN

    @property
    def name(self) -> str:
        return f"vm{self.index}"

    @property
    def host_link(self) -> str:
        """The machine's end of the NIC's veth, a port of the machine's br-int."""
        return f"kvm-{self.name}"

    @property
    def port_name(self) -> str:
        """The Neutron name of the VM's port (the trunk's parent) and of its trunk."""
        return f"kuryr-stack-{self.name}"

    @property
    def ids_file(self) -> Path:
        """The ids of the VM's port and trunk, kept so listing the VMs needs no Neutron."""
        return self.root / "neutron.json"

    @property
    def mode_file(self) -> Path:
        return self.root / "mode"


def vms_dir(stack_root: Path) -> Path:
    return stack_root / "vms"


def mode_of(index: int, choice: str) -> str:
    """The nested mode of ``vm<index>`` under ``--vm-mode choice``."""
    if choice not in MODE_CHOICES:
        raise PlanError(f"--vm-mode must be one of {', '.join(MODE_CHOICES)}, not {choice!r}")
    if choice == MIXED:
        return MACVLAN if index % 2 else VLAN
    return choice


def names(count: int) -> list[str]:
    if not 1 <= count <= MAX_VMS:
        raise PlanError(f"--vms must be between 1 and {MAX_VMS}, not {count}")
    return [f"vm{index}" for index in range(1, count + 1)]


def index_of(name: str) -> int:
    match = _NAME.match(name)
    if match is None:
        raise PlanError(f"{name!r} is not a simulated VM name (vm1 … vm{MAX_VMS})")
    return int(match.group(1))


def vm(stack_root: Path, name: str, mode: str) -> SimVm:
    if mode not in MODES:
        raise PlanError(f"{name}: unknown nested mode {mode!r}")
    return SimVm(index_of(name), vms_dir(stack_root), mode)


def planned(stack_root: Path, count: int, choice: str) -> list[SimVm]:
    """VMs vm1 … vm<count>; one that exists keeps the mode it was made with."""
    existing = {v.name: v for v in present(stack_root)}
    return [
        existing.get(name) or vm(stack_root, name, mode_of(index_of(name), choice))
        for name in names(count)
    ]


def present(stack_root: Path) -> list[SimVm]:
    """The VMs that have a directory, in index order, each with its recorded mode."""
    directory = vms_dir(stack_root)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        if not _NAME.match(entry.name):
            continue
        try:
            mode = (entry / "mode").read_text().strip()
        except OSError:
            mode = MACVLAN  # made before its mode was written: torn down as any VM
        found.append(vm(stack_root, entry.name, mode if mode in MODES else MACVLAN))
    return sorted(found, key=lambda v: v.index)
