"""Every port body Kuryr sends to Neutron, and the states it brings a port to (pure).

A port Kuryr creates is made by :func:`create_body`, whoever wants it (a reservation of
RequestAddress, an endpoint, a pool); an anchor by :func:`anchor_body`. Its later states are
written here too: its addresses, MAC, binding and security groups as an endpoint needs them,
assigned to an endpoint, cleaned into a pool (both journaled, kuryr.domain.ports.journal),
adopted from its owner and handed back to it (kuryr-libnetwork's "existing port", made by hand
for an address).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kuryr import naming
from kuryr.domain.ports.mine import Mark
from kuryr.domain.ports.port import Port

UPDATE = "update"
DELETE = "delete"

# Neutron error types meaning "this fixed IP is taken".
IP_TAKEN = ("IpAddressAlreadyAllocated", "IpAddressInUse")

# What a hand-made port's owner fields are while Kuryr holds it, and once handed back.
_HANDED_BACK = {"device_id": "", "device_owner": "", "binding:host_id": ""}


def fixed_ip(subnet_id: str, ip: str | None = None) -> dict[str, str]:
    """One ``fixed_ips`` entry: the given address, or any (Neutron picks) when None."""
    return {"subnet_id": subnet_id, "ip_address": ip} if ip else {"subnet_id": subnet_id}


def create_body(
    network_id: str,
    fixed_ips: list[dict[str, str]],
    mark: Mark,
    name: str,
    device_id: str = "",
    mac: str | None = None,
    tags: Iterable[str] = (),
) -> dict[str, Any]:
    """A Kuryr port of this host: marked as this host's (bound to it, or in nested mode
    described, kuryr.domain.ports.mine), owned ``compute:kuryr``. ``tags`` only where Neutron
    keeps them (kuryr.domain.ports.post_tags)."""
    body: dict[str, Any] = {
        "name": name,
        "network_id": network_id,
        "admin_state_up": True,
        "fixed_ips": fixed_ips,
        "device_owner": naming.DEVICE_OWNER,
        **mark.fields(),
    }
    if device_id:
        body["device_id"] = device_id
    if mac:
        body["mac_address"] = mac
    if tags:
        body["tags"] = sorted(set(tags))
    return body


def anchor_body(network_id: str, docker_id: str, mark: Mark) -> dict[str, Any]:
    """An adopting Docker network's claim on a shared network (kuryr.domain.sharing): a port
    with no address, administratively down, marked as the claiming host's."""
    return {
        "name": naming.anchor_name(docker_id),
        "network_id": network_id,
        "device_owner": naming.ANCHOR_OWNER,
        "device_id": docker_id,
        **mark.fields(),
        "fixed_ips": [],
        "admin_state_up": False,
    }


def holding(fixed_ips: list[dict[str, str]]) -> dict[str, Any]:
    """A port that holds exactly these addresses (a dual-stack endpoint's merged port)."""
    return {"fixed_ips": fixed_ips}


def with_mac(mac: str) -> dict[str, Any]:
    """Docker's ``--mac-address`` on a port (Neutron takes it only while the port is unbound)."""
    return {"mac_address": mac}


def bound_to(host: str) -> dict[str, Any]:
    """A port bound to ``host``; ``""`` unbinds it."""
    return {"binding:host_id": host}


def in_groups(groups: list[str]) -> dict[str, Any]:
    """A port in exactly these security groups (``--expose`` adds and removes its own)."""
    return {"security_groups": groups}


def assigned(port: Port, endpoint_id: str) -> dict[str, Any]:
    """What a port handed to ``endpoint_id`` must hold."""
    return {
        "op": UPDATE,
        "device_id": endpoint_id,
        "name": naming.port_name(endpoint_id),
        "tags": sorted({*_without_endpoint(port.tags), *naming.id_tags(endpoint_id)}),
    }


def cleaned(port: Port, extra_tags: Iterable[str] = ()) -> dict[str, Any]:
    """What a port back in a pool must hold: nothing of its last container."""
    return {
        "op": UPDATE,
        "device_id": "",
        "name": naming.POOL_PORT_NAME,
        "tags": sorted({*_without_endpoint(port.tags), *extra_tags}),
    }


def pooled(port: Port) -> Port:
    """The port as it is once its cleaning into a pool is in Neutron."""
    desired = cleaned(port, [naming.POOL_TAG])
    return port.replace(device_id="", name=desired["name"], tags=tuple(desired["tags"]))


def adopting(mark: Mark) -> dict[str, Any]:
    """The owner fields of a hand-made port Kuryr adopts (tagged :func:`adopted_tags`)."""
    return {"device_owner": naming.DEVICE_OWNER, **mark.fields()}


def adopted_tags(port: Port) -> list[str]:
    return [*port.tags, naming.TAG_EXISTING_PORT]


def handed_back(port: Port) -> dict[str, Any]:
    """The owner fields of an adopted port handed back (tagged :func:`handed_back_tags`); a
    nested host's mark in its description goes too (what was there before is not kept)."""
    if naming.described_host(port.description) is not None:
        return {**_HANDED_BACK, "description": ""}
    return dict(_HANDED_BACK)


def handed_back_tags(port: Port) -> list[str]:
    """Its tags as they were before Kuryr adopted it."""
    return [t for t in naming.without_kuryr_tags(list(port.tags)) if t != naming.TAG_EXISTING_PORT]


def holds(port: Port, desired: dict[str, Any]) -> bool:
    """Neutron's port already holds what an update record wants of it (nothing is owed)."""
    view = view_of(port)
    return desired["op"] == UPDATE and all(view[k] == desired[k] for k in view)


def view_of(port: Port) -> dict[str, Any]:
    """The bookkeeping fields of a Neutron port, as a journal view."""
    return {"device_id": port.device_id, "name": port.name, "tags": sorted(set(port.tags))}


def _without_endpoint(tags: Iterable[str]) -> list[str]:
    return [t for t in tags if t.partition(":")[0] not in (naming.TAG_ID_LOW, naming.TAG_ID_HIGH)]
