"""The binding interface (in the spirit of os-vif): plug and unplug one VIF.

A VIF is a veth pair named from the Docker endpoint id. ``plug`` creates it, gives the
container end the port's MAC and MTU, attaches the host end to the backend and returns once
the backend says traffic can flow (for OVN: ``ovn-installed``). Docker then moves the
container end into the sandbox. ``unplug`` is idempotent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

HOST_IF_PREFIX = "tap"
CONTAINER_IF_PREFIX = "t_c"
_ID_CHARS = 11  # IFNAMSIZ is 16 with the NUL: prefix (3) + 11 + spare


@dataclass(frozen=True)
class Vif:
    port_id: str
    endpoint_id: str
    network_id: str  # Neutron network id
    mac_address: str
    mtu: int
    vif_type: str = "ovs"
    vif_details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def host_ifname(self) -> str:
        return host_ifname(self.endpoint_id)

    @property
    def container_ifname(self) -> str:
        return container_ifname(self.endpoint_id)


def host_ifname(endpoint_id: str) -> str:
    return HOST_IF_PREFIX + endpoint_id[:_ID_CHARS]


def container_ifname(endpoint_id: str) -> str:
    return CONTAINER_IF_PREFIX + endpoint_id[:_ID_CHARS]


class Binder(ABC):
    """One backend. ``vif_types`` lists the Neutron ``binding:vif_type`` values it serves."""

    vif_types: ClassVar[frozenset[str]]

    @abstractmethod
    async def plug(self, vif: Vif, ready_timeout: float) -> None:
        """Create and attach the veth pair; raise BackendError if not ready in time."""

    @abstractmethod
    async def unplug(self, vif: Vif) -> None:
        """Detach and delete the veth pair; a missing one is not an error."""

    @abstractmethod
    async def plugged(self) -> dict[str, str]:
        """Neutron port id -> host interface name for every VIF this host has plugged."""

    @abstractmethod
    async def close(self) -> None:
        """Release the backend's connections."""
