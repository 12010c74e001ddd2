"""The typed, immutable view of a Neutron port: the only code that reads a port's fields from
Neutron's JSON (and writes them back for the local state)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kuryr import naming
from kuryr.backends.binding.base import Vif

# binding:vif_type of a port Neutron has not bound (yet): a port of a bulk create exists before
# its binding is done, and one whose binding failed cannot be plugged.
_UNBOUND = ("unbound", "binding_failed", None)


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str = ""
    mac_address: str = ""
    fixed_ips: tuple[tuple[str, str], ...] = ()  # (subnet id, ip address)
    device_id: str = ""
    device_owner: str = ""
    name: str = ""
    tags: tuple[str, ...] = ()
    host: str = ""  # binding:host_id
    description: str = ""  # a nested host's ports name it there (kuryr.domain.ports.mine)
    vif_type: str | None = None  # binding:vif_type
    vif_details: Mapping[str, Any] = field(default_factory=dict, compare=False)
    status: str = ""
    security_groups: tuple[str, ...] = ()
    revision_number: int | None = None
    updated_at: str = ""  # when Neutron last changed it (its creation when it does not say)

    @classmethod
    def from_neutron(cls, raw: Mapping[str, Any]) -> Port:
        revision = raw.get("revision_number")
        return cls(
            id=str(raw.get("id") or ""),
            network_id=str(raw.get("network_id") or ""),
            mac_address=str(raw.get("mac_address") or ""),
            fixed_ips=tuple(
                (str(f["subnet_id"]), str(f["ip_address"])) for f in raw.get("fixed_ips") or []
            ),
            device_id=str(raw.get("device_id") or ""),
            device_owner=str(raw.get("device_owner") or ""),
            name=str(raw.get("name") or ""),
            tags=tuple(raw.get("tags") or ()),
            host=str(raw.get("binding:host_id") or ""),
            description=str(raw.get("description") or ""),
            vif_type=raw.get("binding:vif_type"),
            vif_details=dict(raw.get("binding:vif_details") or {}),
            status=str(raw.get("status") or ""),
            security_groups=tuple(raw.get("security_groups") or ()),
            revision_number=None if revision is None else int(revision),
            updated_at=str(raw.get("updated_at") or raw.get("created_at") or ""),
        )

    def to_neutron(self) -> dict[str, Any]:
        """The port as Neutron's JSON (what the local state keeps)."""
        raw: dict[str, Any] = {
            "id": self.id,
            "network_id": self.network_id,
            "mac_address": self.mac_address,
            "fixed_ips": [{"subnet_id": s, "ip_address": ip} for s, ip in self.fixed_ips],
            "device_id": self.device_id,
            "device_owner": self.device_owner,
            "name": self.name,
            "tags": list(self.tags),
            "binding:host_id": self.host,
            "description": self.description,
            "binding:vif_details": dict(self.vif_details),
            "status": self.status,
            "security_groups": list(self.security_groups),
        }
        if self.vif_type is not None:
            raw["binding:vif_type"] = self.vif_type
        if self.revision_number is not None:
            raw["revision_number"] = self.revision_number
        if self.updated_at:
            raw["updated_at"] = self.updated_at
        return raw

    def replace(self, **changes: Any) -> Port:
        return dataclasses.replace(self, **changes)

    # --- what the domain asks of a port ----------------------------------------------------------

    @property
    def ips(self) -> list[str]:
        return [ip for _, ip in self.fixed_ips]

    @property
    def subnet_ids(self) -> list[str]:
        return [sid for sid, _ in self.fixed_ips]

    def ip_on(self, subnet_id: str) -> str | None:
        return next((ip for sid, ip in self.fixed_ips if sid == subnet_id), None)

    @property
    def bound(self) -> bool:
        """False while Neutron is still binding a port of a bulk create (the ports exist before
        their binding is done): such a port is taken in later, with its binding, never cached
        unbound (a container would get a port it cannot plug)."""
        return self.vif_type not in _UNBOUND

    @property
    def kuryr_owned(self) -> bool:
        return self.device_owner == naming.DEVICE_OWNER

    @property
    def adopted(self) -> bool:
        """A hand-made port Kuryr took over (kuryr-libnetwork's "existing port"): handed back
        to its owner, never deleted."""
        return naming.TAG_EXISTING_PORT in self.tags

    @property
    def is_anchor(self) -> bool:
        """An adopting Docker network's claim on a shared network (kuryr.domain.sharing)."""
        return self.device_owner == naming.ANCHOR_OWNER

    @property
    def in_pool(self) -> bool:
        """A port waiting in a pool: no device_id, and the pool tag or (tag not yet written)
        the pool port name. A pool port handed to a container has a device_id and is judged
        by it."""
        if self.device_id:
            return False
        return naming.POOL_TAG in self.tags or self.name == naming.POOL_PORT_NAME

    @property
    def released_by_libnetwork(self) -> bool:
        """A port kuryr-libnetwork let go of without deleting it: its DeleteEndpoint strips
        the endpoint's id tags and keeps the port (on Docker's IPAM for good; it takes the port
        again for the next container given that address). Kuryr's own ports carry the tags for
        as long as they carry the endpoint's ``device_id``."""
        return (
            bool(self.device_id)
            and self.kuryr_owned
            and self.name == naming.port_name(self.device_id)
            and naming.id_from_tags(self.tags) is None
        )

    def vif(self, endpoint_id: str, mtu: int) -> Vif:
        return Vif(
            port_id=self.id,
            endpoint_id=endpoint_id,
            network_id=self.network_id,
            mac_address=self.mac_address,
            mtu=mtu,
            vif_type=self.vif_type or "ovs",
            vif_details=dict(self.vif_details),
            ips=tuple(self.ips),
        )
