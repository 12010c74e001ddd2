"""The binding interface (in the spirit of os-vif): plug and unplug one VIF.

A VIF is a veth pair named from the Neutron port id (as kuryr-libnetwork names it), so a pool
port can be plugged before any container asks for it (kuryr.domain.ports.prewire). ``plug`` creates
it,
gives the container end the port's MAC and MTU, attaches the host end to the backend and
returns once the backend says traffic can flow (for OVN: ``ovn-installed``). Docker then
moves the container end into the sandbox, and back out when the container stops. ``unplug``
is idempotent. ``ready`` tells whether a VIF plugged earlier is still whole and wired, so a
port's VIF serves container after container without being plugged again.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kuryr import deadline
from kuryr.errors import BackendError

if TYPE_CHECKING:
    from kuryr.backends.netlink import Netlink

HOST_IF_PREFIX = "tap"
CONTAINER_IF_PREFIX = "t_c"
_ID_CHARS = 11  # IFNAMSIZ is 16 with the NUL: prefix (3) + 11 + spare

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Vif:
    port_id: str
    endpoint_id: str  # empty for a pool port plugged ahead of its container
    network_id: str  # Neutron network id
    mac_address: str
    mtu: int
    vif_type: str = "ovs"
    vif_details: Mapping[str, Any] = field(default_factory=dict)
    # The port's fixed IPs: what a nested macvlan puts in the VM port's allowed address pairs.
    ips: tuple[str, ...] = ()

    @property
    def host_ifname(self) -> str:
        return host_ifname(self.port_id)

    @property
    def container_ifname(self) -> str:
        return container_ifname(self.port_id)

    def same_wiring(self, other: Vif) -> bool:
        """Both need the same veth and the same attachment (whoever the endpoint is)."""
        return self._wiring() == other._wiring()

    def _wiring(self) -> tuple[Any, ...]:
        details = dict(self.vif_details)
        return (self.port_id, self.mac_address.lower(), self.mtu, self.vif_type, details)


def host_ifname(port_id: str) -> str:
    return HOST_IF_PREFIX + port_id[:_ID_CHARS]


def container_ifname(port_id: str) -> str:
    return CONTAINER_IF_PREFIX + port_id[:_ID_CHARS]


async def veth_intact(netlink: Netlink, vif: Vif) -> bool:
    """Both ends of the VIF's veth are in this namespace, the container end as plug leaves it.

    A container end comes back from a stopped container (Docker moves it out of the sandbox
    before the endpoint is deleted) and is handed to the next one, so it must be as fresh:
    moving it emptied its addresses, routes and queueing rules; what a container with
    NET_ADMIN could have changed and the move keeps (MAC, MTU, flags, alias) is checked here.
    """
    container = await netlink.link(vif.container_ifname)
    host = await netlink.index(vif.host_ifname)
    if container is None or host is None or container.peer != host:
        return False
    return (
        container.mac.lower() == vif.mac_address.lower()
        and container.mtu == vif.mtu
        and not (container.up or container.promisc or container.allmulti or container.alias)
    )


class Binder(ABC):
    """One backend. ``vif_types`` lists the Neutron ``binding:vif_type`` values it serves."""

    vif_types: ClassVar[frozenset[str]]
    # Neutron refuses to delete the port while it is plugged (a trunk's subport): its VIF
    # goes first, not after the delete (kuryr.domain.ports.prewire).
    unplug_before_delete: ClassVar[bool] = False
    # Neutron takes the port only while it has no device_id (a trunk's subport): a port not
    # plugged ahead is plugged at CreateEndpoint, before its bookkeeping (domain.endpoints).
    plug_before_bookkeeping: ClassVar[bool] = False
    # It plugs a port whatever Neutron's binding of it says (nested mode: the binding is the
    # hypervisor's side, and a port bound to a VM's name is binding_failed on ML2/OVN).
    plugs_unbound: ClassVar[bool] = False
    # Plugs ahead of this backend's ports at once, at most (kuryr.domain.ports.prewire);
    # None: as many as the prewire runs.
    plugs_ahead_at_once: ClassVar[int | None] = None

    def device_mac(self, port_mac: str) -> str:
        """The MAC the container's device carries (Docker is told it): the port's."""
        return port_mac

    def port_mac(self, device_mac: str) -> str:
        """The MAC a port is given for the device MAC Docker asks for (``--mac-address``),
        such that :meth:`device_mac` of it is that MAC again: here the same."""
        return device_mac

    async def filtering_port(self) -> str | None:
        """The Neutron port whose security groups filter the traffic of this binder's ports
        in their stead, when not each port itself (None, the default): there a group on a
        container's port filters nothing (kuryr.domain.security_groups)."""
        return None

    @abstractmethod
    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        """Create and attach the veth pair; raise BackendError if not ready in time."""

    @abstractmethod
    async def ready(self, vif: Vif) -> bool:
        """The VIF is plugged as ``plug`` left it and traffic can flow."""

    @abstractmethod
    async def unplug(self, vif: Vif) -> None:
        """Detach and delete the veth pair; a missing one is not an error."""

    @abstractmethod
    async def plugged(self) -> dict[str, str]:
        """Neutron port id -> host interface name for every VIF this host has plugged."""

    async def undo_plug(self, vif: Vif) -> None:
        """Unplug what a failed ``plug`` made, within the cleanup budget and even when the
        request is cancelled. A failure is only logged: the plug's error is the one the
        caller needs, and reconciliation removes leftovers."""
        with deadline.cleanup():
            try:
                await asyncio.shield(self.unplug(vif))
            except BackendError as e:
                LOG.warning("cleanup after a failed plug of port %s: %s", vif.port_id, e)

    async def diagnose(self, vif: Vif) -> str | None:
        """Why the backend may not report the port of a running container up, as far as this
        host can tell; None when nothing here looks wrong (or this binder cannot tell)."""
        return None

    async def remove(self, host_ifname: str) -> None:
        """Unplug a VIF known only by its host end's name (reconciliation finds VIFs whose
        port is gone, named whatever plugged them); a missing one is not an error."""
        raise BackendError(f"{type(self).__name__} cannot remove interface {host_ifname}")

    async def traces(self) -> dict[str, str]:
        """What this binder wrote on Neutron for a port, outside the port, that the port's
        delete leaves behind (macvlan: a pair on the VM's port), as this host recorded it:
        trace -> port id. Reconciliation erases those whose port is gone."""
        return {}

    async def erase(self, trace: str) -> None:
        """Take one of :meth:`traces` off Neutron."""
        raise BackendError(f"{type(self).__name__} leaves no traces to erase ({trace})")

    async def rewire(self, vif: Vif, ready_timeout: float) -> None:
        """Attach the host end of a running container's VIF to the backend again, so the
        backend reports the port down and up afresh (the container end stays in place)."""
        raise BackendError(f"{type(self).__name__} cannot re-attach VIF {vif.host_ifname}")

    @abstractmethod
    async def close(self) -> None:
        """Release the backend's connections."""


class HostBinders(Protocol):
    """The binders of one host, by the ``binding:vif_type`` they serve, and its chassis name
    (kuryr.backends.binding.registry.Binders; tests pass a fake)."""

    host: str

    def for_vif_type(self, vif_type: str) -> Binder: ...

    async def vm_port(self) -> str | None:
        """Nested mode: the VM's Neutron port id (kuryr.domain.ports.mine); else None."""
        ...
