"""A ``vlan`` VM's own switch: ovsdb-server and a userspace ovs-vswitchd in the VM's
namespace with one bridge, ``br-vm``, whose uplink is the VM's NIC.

It stands in for the 802.1Q subinterfaces this kernel cannot make: the VM's Kuryr daemon
plugs each container as an access port of ``br-vm`` tagged with its subport's VLAN id, and
the bridge sends the container's frames out of the NIC with that tag, as an ``eth0.<id>``
device would (kuryr.backends.binding.vlan_ovs). The chassis parts of a simulated host's OVS
(ovn-controller, br-phy, the Neutron agent) have no place in a VM and are not started."""

from __future__ import annotations

from kuryr.stack import proc
from kuryr.stack.errors import StackError
from kuryr.stack.simovs import SimChassis
from kuryr.stack.vmplan import NIC, VM_BRIDGE, SimVm


class VmSwitch(SimChassis):
    def __init__(self, vm: SimVm) -> None:
        super().__init__(vm)
        self.name = f"{vm.name}/ovs"

    def start(self) -> bool:
        self.host.ovs_run.mkdir(parents=True, exist_ok=True)
        self.host.logs.mkdir(parents=True, exist_ok=True)
        if proc.running(self.db_pidfile, self.marker) is None:
            self._start_ovsdb()
        # Read once when ovs-vswitchd starts: veth to veth TCP through a userspace bridge.
        self.vsctl(
            "--no-wait", "set", "open_vswitch", ".", "other_config:userspace-tso-enable=true"
        )
        if proc.running(self.vswitchd_pidfile, self.marker) is None:
            self._start_vswitchd()
        self.vsctl(
            "--may-exist", "add-br", VM_BRIDGE,
            "--", "set", "bridge", VM_BRIDGE, "datapath_type=netdev",
            "--", "--may-exist", "add-port", VM_BRIDGE, NIC,
        )  # fmt: skip
        if not proc.wait_for(lambda: self.check()[0], 30, 0.1):
            raise StackError(self.name, self.check()[1], self.host.log("ovs-vswitchd"))
        return False

    def check(self) -> tuple[bool, str]:
        for what, pidfile in (
            ("ovsdb-server", self.db_pidfile),
            ("ovs-vswitchd", self.vswitchd_pidfile),
        ):
            if proc.running(pidfile, self.marker) is None:
                return False, f"its {what} is not running"
        try:
            ports = self.vsctl("list-ports", VM_BRIDGE, timeout=3).split()
        except StackError as exc:
            return False, exc.reason
        if NIC not in ports:
            return False, f"{NIC} is not the uplink of {VM_BRIDGE}"
        return True, f"{VM_BRIDGE} on {NIC}"
