"""Which Neutron ports are this host's: the one place that says it, for every Kuryr port and
anchor this host makes, finds again (pools, recovery, reconciliation, healing, sharing) or
judges for another host (``kuryr gc --host``, ``kuryr status --hosts``).

On a host with a chassis (OVS binding) a port is this host's by ``binding:host_id``, the
chassis name, as kuryr-libnetwork binds it: ovn-controller claims it by that name.

Inside a Nova VM (nested mode) no port may be bound to the VM: ovn-controller refuses a port
whose ``binding:host_id`` names no chassis ("requested-chassis"), and the hypervisor's side of
a subport is Neutron's to set (its trunk driver gives a subport the parent's binding in later
releases; Zed leaves it as the port had it). Nested ports are made unbound and say whose they
are in their description: ``kuryr host: vm-port:<the VM's port id>`` (naming). The VM's port
id, not the VM's name: Nova names and guest hostnames are neither unique (two VMs may share
one, images clone theirs) nor stable (a guest renames itself), while the port id is unique by
construction, lives exactly as long as the VM's network identity, and its absence proves the
host gone for good (``kuryr gc --host``). The description is written in the POST that makes
the port, so no crash leaves a port of this host unmarked (tags posted with a port are
dropped by a Neutron without ``tag_ports_during_bulk_creation``).

A port a nested host marked is no chassis's, whatever its binding says, so a daemon on the
hypervisor never takes a VM's subport (bound to the hypervisor by Neutron) for its own. And
the mark is Kuryr's alone while ``device_owner`` is not: the trunk plugin makes a subport's
``trunk:subport``, and ``""`` once it leaves a trunk (Kuryr writes its own back, but a crash
in between, or a trunk deleted by someone else, leaves theirs), so a nested host's ports are
found by the mark alone and owned whichever of the three owners they show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kuryr import naming
from kuryr.backends.binding.base import HostBinders
from kuryr.domain.ports.port import Port

# What the trunk plugin leaves as a subport's device_owner: in a trunk, and once out of it.
_TRUNK_OWNERS = (naming.SUBPORT_OWNER, "")


def holder(port: Port) -> str:
    """The host a port belongs to: the nested host its description names, else its binding's
    (``""``: unbound)."""
    return naming.described_host(port.description) or port.host


def kuryrs(port: Port) -> bool:
    """A port Kuryr made for some host: ``compute:kuryr``, or a VM's whatever owner the trunk
    plugin left it."""
    return port.kuryr_owned or naming.described_host(port.description) is not None


@dataclass(frozen=True)
class Mark:
    """What makes a port one host's. ``host``: the ``binding:host_id`` Kuryr writes (a
    chassis name; ``""`` in nested mode); ``vm_port``: nested mode's VM port id."""

    host: str
    vm_port: str = ""

    @classmethod
    def named(cls, name: str) -> Mark:
        """The mark of the host called ``name`` (a chassis name or ``vm-port:<id>``)."""
        vm_port = naming.vm_port_of(name)
        return cls("", vm_port) if vm_port else cls(name)

    @property
    def nested(self) -> bool:
        return bool(self.vm_port)

    @property
    def name(self) -> str:
        """The host's name, as :func:`holder` gives it and network descriptions carry it."""
        return naming.vm_host(self.vm_port) if self.vm_port else self.host

    def fields(self) -> dict[str, Any]:
        """What a port of this host carries, in the body that makes or adopts it."""
        if self.vm_port:
            return {"description": naming.host_description(self.name)}
        return {"binding:host_id": self.host}

    def query(self, owner: str = naming.DEVICE_OWNER) -> dict[str, Any]:
        """The list filter for this host's ports of ``owner``; what it answers is checked with
        :meth:`owns` (a chassis's query also answers the VMs' subports bound there; a VM's
        Kuryr ports are asked by the mark alone, their owner may be the trunk plugin's)."""
        if self.vm_port and owner == naming.DEVICE_OWNER:
            return self.fields()
        return {"device_owner": owner, **self.fields()}

    def marks(self, port: Port) -> bool:
        """The port is this host's, whoever owns it."""
        return holder(port) == self.name

    def owns(self, port: Port) -> bool:
        """A Kuryr port (``compute:kuryr``; nested, the trunk plugin's owners too) of this
        host."""
        if self.vm_port and port.device_owner in _TRUNK_OWNERS:
            return self.marks(port)
        return port.kuryr_owned and self.marks(port)


class Mine:
    """This host's :class:`Mark`, known on first use: a nested host's needs the VM's port,
    read from Neutron (the daemon starts even while Neutron is away). ``vm_port``: the VM's
    port id, None on a host with a chassis."""

    def __init__(self, host: str, vm_port: Callable[[], Awaitable[str | None]]) -> None:
        self._host = host
        self._vm_port = vm_port
        self._mark: Mark | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def of(cls, binders: HostBinders) -> Mine:
        return cls(binders.host, binders.vm_port)

    @classmethod
    def fixed(cls, mark: Mark) -> Mine:
        mine = cls(mark.host, _none)
        mine._mark = mark
        return mine

    async def mark(self) -> Mark:
        if self._mark is None:
            async with self._lock:
                if self._mark is None:
                    vm_port = await self._vm_port()
                    self._mark = Mark("", vm_port) if vm_port else Mark(self._host)
        return self._mark


async def _none() -> str | None:
    return None
