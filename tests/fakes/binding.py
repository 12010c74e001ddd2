"""An in-memory binder for domain tests without OVS: it records every plug and unplug, and
knows which VIFs are plugged and whole (``ready``), as the OVS binder learns from OVSDB's
``ovn-installed`` and the veth's state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import ClassVar

from kuryr.backends.binding import registry
from kuryr.backends.binding.base import Binder, Vif
from kuryr.backends.netlink import Netlink
from kuryr.errors import BackendError

PLUG = "plug"
UNPLUG = "unplug"


class FakeBinder(Binder):
    vif_types: ClassVar[frozenset[str]] = frozenset({"ovs"})

    def __init__(self) -> None:
        self.wired: dict[str, Vif] = {}  # port id -> the VIF as plugged
        self.events: list[tuple[str, str]] = []  # (PLUG or UNPLUG, port id), in order
        # Port ids whose VIF a container left changed (MAC, MTU, flags): no longer whole.
        self.spoiled: set[str] = set()
        self.plug_delay = 0.0  # seconds a plug takes before the backend has wired it
        self.closed = False

    def plugs(self, port_id: str | None = None) -> list[str]:
        return [pid for kind, pid in self.events if kind == PLUG and port_id in (None, pid)]

    def unplugs(self, port_id: str | None = None) -> list[str]:
        return [pid for kind, pid in self.events if kind == UNPLUG and port_id in (None, pid)]

    def spoil(self, port_id: str) -> None:
        """The container end came back changed (as a container with NET_ADMIN may leave it)."""
        self.spoiled.add(port_id)

    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        self.events.append((PLUG, vif.port_id))
        await asyncio.sleep(self.plug_delay)
        self.wired[vif.port_id] = vif
        self.spoiled.discard(vif.port_id)

    async def ready(self, vif: Vif) -> bool:
        await asyncio.sleep(0)
        wired = self.wired.get(vif.port_id)
        return wired is not None and wired.same_wiring(vif) and vif.port_id not in self.spoiled

    async def unplug(self, vif: Vif) -> None:
        self.events.append((UNPLUG, vif.port_id))
        await asyncio.sleep(0)
        self.wired.pop(vif.port_id, None)
        self.spoiled.discard(vif.port_id)

    async def plugged(self) -> dict[str, str]:
        return {port_id: vif.host_ifname for port_id, vif in self.wired.items()}

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeBinders:
    """:class:`kuryr.backends.binding.base.HostBinders` with one fake binder for ``ovs``."""

    host: str = "vm"
    binder: FakeBinder = field(default_factory=FakeBinder)

    def for_vif_type(self, vif_type: str) -> Binder:
        if vif_type not in self.binder.vif_types:
            raise BackendError(f"no binder for vif_type {vif_type!r} (this host serves: ovs)")
        return self.binder

    async def vm_port(self) -> str | None:
        return None


class NoLinks(Netlink):
    """A host with no veth named like Kuryr's (reconciliation's kernel view, without reading
    the real one)."""

    async def names(self, prefix: str) -> set[str]:
        return set()


def host_binders(host: str = "vm") -> registry.Binders:
    """The binders reconciliation reads: no OVSDB, no veths, the fake binder for ``ovs``."""
    binder = FakeBinder()
    return registry.Binders(host, {"ovs": binder}, {}, NoLinks(), None)
