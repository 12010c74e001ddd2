"""The binders of this host, chosen by a port's ``binding:vif_type``.

Registration is explicit: ``BINDER_CLASSES`` maps every binder class to the function that
builds it from the host's backends; :func:`load` builds each one whose backend is present
(OVS needs a reachable OVSDB) and remembers why the others are not.

Nested mode (``[binding] driver`` ``vlan`` or ``macvlan``: a daemon inside a Nova VM) has no
OVSDB and one binder (:func:`load_nested`) for every port: the vif_type Neutron reports
is the hypervisor's side (a subport is ``ovs`` on the hypervisor's br-int), not the VM's.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kuryr.backends.binding.base import Binder
from kuryr.backends.binding.linuxbridge import LinuxBridgeBinder
from kuryr.backends.binding.macvlan import MacvlanBinder
from kuryr.backends.binding.nested import VmNic
from kuryr.backends.binding.ovs import OvsBinder
from kuryr.backends.binding.vlan import VlanBinder
from kuryr.backends.binding.vlan_ovs import VlanOvsBinder, connect
from kuryr.backends.netlink import Netlink
from kuryr.backends.neutron_api import NeutronApi
from kuryr.backends.ovsdb import Ovsdb
from kuryr.backends.state import State
from kuryr.config import BINDING_MACVLAN, VLAN_DEVICE_OVS, BindingConfig
from kuryr.errors import BackendError

LOG = logging.getLogger(__name__)


def _ovs_binder(config: BindingConfig, netlink: Netlink, ovsdb: Ovsdb | None) -> Binder:
    if ovsdb is None:
        raise BackendError(f"OVSDB {config.ovsdb_connection} is not reachable")
    return OvsBinder(ovsdb, netlink, config.integration_bridge, config.tx_checksum_offload)


def _linuxbridge_binder(config: BindingConfig, netlink: Netlink, ovsdb: Ovsdb | None) -> Binder:
    return LinuxBridgeBinder(netlink)


BINDER_CLASSES: Mapping[type[Binder], Callable[[BindingConfig, Netlink, Ovsdb | None], Binder]] = {
    OvsBinder: _ovs_binder,
    LinuxBridgeBinder: _linuxbridge_binder,
}

# What Neutron reports when it could not bind a port, and why.
_UNBINDABLE = {
    "binding_failed": "Neutron could not bind it to host {host} (is binding:host_id this "
    "host's chassis name, and does a mechanism driver serve it?)",
    "unbound": "it is not bound to any host (binding:host_id should be {host})",
}


@dataclass
class Binders:
    """The host's chassis name and its binders, by the vif_types they serve."""

    host: str
    by_vif_type: dict[str, Binder]
    unavailable: dict[str, str]  # vif_type -> why its backend is missing
    netlink: Netlink
    ovsdb: Ovsdb | None
    nested: Binder | None = None  # nested mode: the one binder of every port
    nic: VmNic | None = None  # nested mode: the VM's NIC and port

    async def vm_port(self) -> str | None:
        return (await self.nic.port()).id if self.nic is not None else None

    def for_vif_type(self, vif_type: str) -> Binder:
        if self.nested is not None:
            return self.nested
        binder = self.by_vif_type.get(vif_type)
        if binder is not None:
            return binder
        if vif_type in _UNBINDABLE:
            reason = _UNBINDABLE[vif_type].format(host=self.host)
            raise BackendError(f"port has binding:vif_type {vif_type}: {reason}")
        if vif_type in self.unavailable:
            raise BackendError(
                f"cannot plug a port of vif_type {vif_type}: {self.unavailable[vif_type]}"
            )
        known = ", ".join(sorted(self.by_vif_type)) or "none"
        raise BackendError(f"no binder for vif_type {vif_type!r} (this host serves: {known})")

    async def remove_stray(self, host_ifname: str) -> None:
        """A host end no backend holds (a plug cut short, a backend's port removed by hand):
        the veth goes, with its peer."""
        await self.netlink.delete_link(host_ifname)

    async def close(self) -> None:
        if self.nested is not None:
            await self.nested.close()
        for binder in self.by_vif_type.values():
            await binder.close()
        await self.netlink.close()
        if self.ovsdb is not None:
            await self.ovsdb.close()


async def load(
    config: BindingConfig, neutron: NeutronApi | None = None, state: State | None = None
) -> Binders:
    """The host's binders; in nested mode the one nested binder, which needs ``neutron``
    (and ``state`` in macvlan mode: the pairs it writes are recorded there)."""
    if config.nested:
        if neutron is None:
            raise BackendError(f"[binding] driver = {config.driver} needs a Neutron client")
        if config.vlan_device == VLAN_DEVICE_OVS:
            return await load_vlan_ovs(config, neutron)
        return load_nested(config, neutron, state)
    netlink = Netlink()
    by_vif_type: dict[str, Binder] = {}
    unavailable: dict[str, str] = {}
    ovsdb: Ovsdb | None = None
    try:
        ovsdb = await Ovsdb.connect(config.ovsdb_connection)
    except BackendError as e:
        LOG.warning("no OVSDB: %s", e)
    for cls, build in BINDER_CLASSES.items():
        try:
            binder = build(config, netlink, ovsdb)
        except BackendError as e:
            LOG.warning("%s unavailable: %s", cls.__name__, e)
            unavailable.update(dict.fromkeys(cls.vif_types, str(e)))
            continue
        by_vif_type.update(dict.fromkeys(cls.vif_types, binder))
    host = config.host or (await ovsdb.hostname() if ovsdb is not None else "")
    if not host:
        await netlink.close()
        if ovsdb is not None:
            await ovsdb.close()
        raise BackendError(
            "this host's chassis name is unknown: set [binding] host, or OVSDB "
            "Open_vSwitch external_ids:hostname"
        )
    return Binders(host, by_vif_type, unavailable, netlink, ovsdb)


def load_nested(config: BindingConfig, neutron: NeutronApi, state: State | None) -> Binders:
    """A VM has no OVSDB: its name is ``[binding] host``, else the VM's hostname (for logs:
    its ports are marked by the VM's port, kuryr.domain.ports.mine)."""
    netlink = Netlink()
    nic = VmNic(neutron, netlink, config.link_iface)
    binder: Binder
    if config.driver == BINDING_MACVLAN:
        if state is None:
            raise BackendError("[binding] driver = macvlan needs the state file")
        binder = MacvlanBinder(neutron, netlink, nic, state)
    else:
        binder = VlanBinder(neutron, netlink, nic)
    host = config.host or socket.gethostname()
    return Binders(host, {}, {}, netlink, None, nested=binder, nic=nic)


async def load_vlan_ovs(config: BindingConfig, neutron: NeutronApi) -> Binders:
    """vlan mode through the VM's own OVS bridge (``vlan_device = ovs``): the VM's OVSDB is
    ``ovsdb_connection``, its bridge ``integration_bridge``."""
    ovsdb = await connect(config.ovsdb_connection)
    netlink = Netlink()
    nic = VmNic(neutron, netlink, config.link_iface)
    binder = VlanOvsBinder(
        neutron, netlink, nic, ovsdb, config.integration_bridge, config.tx_checksum_offload
    )
    host = config.host or socket.gethostname()
    return Binders(host, {}, {}, netlink, ovsdb, nested=binder, nic=nic)
