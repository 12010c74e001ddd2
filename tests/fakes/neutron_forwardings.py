"""Floating IP port forwardings of the in-memory Neutron (``/floatingips/<id>/port_forwardings``),
with the rules Neutron's port forwarding plugin (Zed, ML2/OVN) applies: the internal port must
hold the internal address and sit on a subnet of a router whose gateway is on the floating IP's
network; an external port and protocol are forwarded once per floating IP, and an internal
port, address, port number and protocol once at all (both 400 BadRequest); a floating IP bound
to a port takes none (409). A forwarding goes with its floating IP and with its internal port.
"""

from __future__ import annotations

from typing import Any

from kuryr.backends.neutron_api import Resource
from tests.fakes.neutron_ips import Refused
from tests.fakes.neutron_schema import ROUTER_INTERFACE_OWNER
from tests.fakes.neutron_store import Store

ATTRIBUTES = {
    "protocol", "internal_port_id", "internal_ip_address", "internal_port", "external_port",
    "description",
}  # fmt: skip
PROTOCOLS = ("tcp", "udp")


def listed(store: Store, floating_ip_id: str) -> list[Resource]:
    store.get("floatingips", floating_ip_id)
    return [dict(f) for f in store.forwardings.values() if f["floatingip_id"] == floating_ip_id]


def add(store: Store, floating_ip_id: str, attrs: dict[str, Any]) -> Resource:
    fip = store.get("floatingips", floating_ip_id)
    unknown = sorted(set(attrs) - ATTRIBUTES)
    if unknown:
        raise _bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    if fip.get("port_id"):
        raise Refused(
            409,
            "FipInUseByPortForwarding",
            f"Floating IP {floating_ip_id} is bound to port {fip['port_id']}",
        )
    if attrs.get("protocol") not in PROTOCOLS:
        raise _bad(f"Invalid input for protocol. Reason: {attrs.get('protocol')!r} is not in ...")
    for key in ("internal_port", "external_port"):
        value = attrs.get(key)
        if not isinstance(value, int) or not 0 < value < 65536:
            raise _bad(f"Invalid input for {key}. Reason: {value!r} is not a valid port number.")
    port = store.tables["ports"].get(str(attrs.get("internal_port_id")))
    if port is None:
        raise _bad(f"Port {attrs.get('internal_port_id')} could not be found.")
    if attrs.get("internal_ip_address") not in {f["ip_address"] for f in port["fixed_ips"]}:
        raise _bad(
            f"The requested internal IP address {attrs.get('internal_ip_address')} is not one "
            f"of port {port['id']}"
        )
    router = _router_for(store, port, fip["floating_network_id"])
    if router is None:
        raise _bad(
            f"External network {fip['floating_network_id']} is not reachable from subnet of "
            f"port {port['id']}."
        )
    for other in store.forwardings.values():
        same_external = other["floatingip_id"] == floating_ip_id and (
            other["external_port"],
            other["protocol"],
        ) == (attrs["external_port"], attrs["protocol"])
        same_internal = (
            other["internal_port_id"],
            other["internal_ip_address"],
            other["internal_port"],
            other["protocol"],
        ) == (port["id"], attrs["internal_ip_address"], attrs["internal_port"], attrs["protocol"])
        if same_external or same_internal:
            raise _bad(
                "A duplicate port forwarding entry with same attributes already exists, "
                f"conflicting values are {{'floatingip_id': '{floating_ip_id}', "
                f"'external_port': {attrs['external_port']}}}"
            )
    row = {
        "id": store.new_id(),
        "floatingip_id": floating_ip_id,
        "description": "",
        **attrs,
        "internal_port_range": f"{attrs['internal_port']}:{attrs['internal_port']}",
        "external_port_range": f"{attrs['external_port']}:{attrs['external_port']}",
    }
    store.forwardings[row["id"]] = row
    fip["router_id"] = router
    return dict(row)


def delete(store: Store, floating_ip_id: str, forwarding_id: str) -> None:
    store.get("floatingips", floating_ip_id)
    row = store.forwardings.get(forwarding_id)
    if row is None or row["floatingip_id"] != floating_ip_id:
        raise Refused(
            404,
            "PortForwardingNotFound",
            f"Port Forwarding {forwarding_id} could not be found.",
        )
    del store.forwardings[forwarding_id]


def _router_for(store: Store, port: Resource, external_network: str) -> str | None:
    """A router with an interface on the port's subnets and its gateway on the network."""
    subnets = {f["subnet_id"] for f in port["fixed_ips"]}
    for iface in store.tables["ports"].values():
        if iface["device_owner"] != ROUTER_INTERFACE_OWNER:
            continue
        if not subnets & {f["subnet_id"] for f in iface["fixed_ips"]}:
            continue
        router = store.tables["routers"].get(iface["device_id"])
        gateway = (router or {}).get("external_gateway_info") or {}
        if gateway.get("network_id") == external_network:
            return str(iface["device_id"])
    return None


def _bad(message: str) -> Refused:
    return Refused(400, "BadRequest", message)
