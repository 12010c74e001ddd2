"""What the in-memory Neutron (tests/fakes/neutron_store.py) knows of Neutron's resources: the
attributes each accepts, which are read-only, how a missing one is refused, and what may not
be deleted while something uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuryr.backends.neutron_api import Resource
from tests.fakes.neutron_ips import Refused

Tables = dict[str, dict[str, Resource]]

PROJECT = "fake_project_id"
METADATA_OWNER = "network:distributed"
ROUTER_INTERFACE_OWNER = "network:router_interface"
FLOATINGIP_OWNER = "network:floatingip"
# What a floating IP's body shows of each of its port forwardings.
FIP_FORWARDING_KEYS = ("protocol", "internal_ip_address", "internal_port", "external_port")
# Neutron's own ports that go with their network or subnet (AUTO_DELETE_PORT_OWNERS); any
# other port, a router's interface included, keeps them.
AUTO_DELETE_OWNERS = {"network:dhcp", METADATA_OWNER, "network:floatingip_agent_gateway"}
MAX_MTU = 1442  # geneve on the local stack
MAX_TAG_LEN = 255

ATTRIBUTES: dict[str, set[str]] = {
    "networks": {
        "name", "admin_state_up", "shared", "mtu", "description", "port_security_enabled",
        "router:external",
    },
    "subnets": {
        "name", "network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp", "prefixlen",
        "allocation_pools", "subnetpool_id", "host_routes", "dns_nameservers", "description",
        "ipv6_ra_mode", "ipv6_address_mode",
    },
    "subnetpools": {
        "name", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared",
        "description", "is_default", "address_scope_id",
    },
    "ports": {
        "name", "network_id", "admin_state_up", "fixed_ips", "device_owner", "device_id",
        "binding:host_id", "binding:profile", "binding:vnic_type", "mac_address", "description",
        "security_groups", "port_security_enabled", "allowed_address_pairs",
    },
    "security-groups": {"name", "description", "stateful"},
    "routers": {"name", "admin_state_up", "description", "external_gateway_info"},
    "floatingips": {"floating_network_id", "floating_ip_address", "port_id", "description"},
    "trunks": {"name", "port_id", "admin_state_up", "sub_ports", "description"},
    "security-group-rules": {
        "security_group_id", "direction", "ethertype", "protocol", "port_range_min",
        "port_range_max", "remote_ip_prefix", "remote_group_id", "description",
    },
}  # fmt: skip
# Accepted in a POST, never in a PUT.
READ_ONLY = {
    "subnets": {"network_id", "ip_version", "cidr", "subnetpool_id", "prefixlen"},
    "ports": {"network_id"},
    "security-group-rules": set(ATTRIBUTES["security-group-rules"]),
    "trunks": {"port_id", "sub_ports"},
}
NOT_FOUND = {
    "networks": ("NetworkNotFound", "Network {} could not be found."),
    "subnets": ("SubnetNotFound", "Subnet {} could not be found."),
    "subnetpools": ("SubnetPoolNotFound", "Subnet pool {} could not be found."),
    "ports": ("PortNotFound", "Port {} could not be found."),
    "security-groups": ("SecurityGroupNotFound", "Security group {} does not exist"),
    "security-group-rules": ("SecurityGroupRuleNotFound", "Security group rule {} does not exist"),
    "routers": ("RouterNotFound", "Router {} could not be found"),
    "floatingips": ("FloatingIPNotFound", "Floating IP {} could not be found"),
    "trunks": ("TrunkNotFound", "Trunk {} could not be found."),
}


def check_delete(tables: Tables, resource: str, row: Resource) -> None:
    """Refused as Neutron refuses deleting what is still used."""
    _IN_USE.get(resource, lambda _t, _r: None)(tables, row)


def _networks(tables: Tables, row: Resource) -> None:
    users = [
        p["id"] for p in _ports_of(tables, row["id"]) if p["device_owner"] not in AUTO_DELETE_OWNERS
    ]
    if users:
        raise Refused(
            409,
            "NetworkInUse",
            f"Unable to complete operation on network {row['id']}. There are one or more "
            f"ports still in use on the network, id for these ports is: {','.join(users)}.",
        )


def _subnets(tables: Tables, row: Resource) -> None:
    held = [
        p
        for p in _ports_of(tables, row["network_id"])
        if p["device_owner"] not in AUTO_DELETE_OWNERS
        and any(f["subnet_id"] == row["id"] for f in p["fixed_ips"])
    ]
    if held:
        raise Refused(
            409,
            "SubnetInUse",
            f"Unable to complete operation on subnet {row['id']}: One or more ports have an "
            "IP allocation from this subnet.",
        )


def _subnetpools(tables: Tables, row: Resource) -> None:
    if any(s["subnetpool_id"] == row["id"] for s in tables["subnets"].values()):
        raise Refused(
            400,
            "SubnetPoolDeleteError",
            "Unable to delete subnet pool: Subnet pool has existing allocations.",
        )


def _security_groups(tables: Tables, row: Resource) -> None:
    if any(row["id"] in p["security_groups"] for p in tables["ports"].values()):
        raise Refused(409, "SecurityGroupInUse", f"Security Group {row['id']} in use.")


def _routers(tables: Tables, row: Resource) -> None:
    if any(p["device_id"] == row["id"] for p in tables["ports"].values()):
        raise Refused(
            409,
            "RouterInUse",
            f"Router {row['id']} still has ports",
        )


# --- addresses ------------------------------------------------------------------------------


_IN_USE: dict[str, Callable[[Tables, Resource], None]] = {
    "networks": _networks,
    "subnets": _subnets,
    "subnetpools": _subnetpools,
    "security-groups": _security_groups,
    "routers": _routers,
}


def _ports_of(tables: Tables, network_id: str) -> list[Resource]:
    return [p for p in tables["ports"].values() if p["network_id"] == network_id]


def check_known(resource: str, attrs: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(k for k in attrs if k not in allowed)
    if unknown:
        names = ", ".join(f"'{k}'" for k in unknown)
        raise Refused(400, "HTTPBadRequest", f"Unrecognized attribute(s) {names}")


def check_mtu(mtu: Any) -> None:
    if int(mtu) > MAX_MTU:
        raise Refused(
            400,
            "InvalidInput",
            f"Invalid input for operation: Requested MTU is too big, maximum is {MAX_MTU}.",
        )


def bind(port: Resource) -> None:
    """ML2/OVN binds a port to the host it names at once (the local stack's Neutron answers
    ``ovs`` even for a host no OVN chassis has: tests/integration/test_nested_subport_ovn.py);
    with no host it stays unbound."""
    if port.get("binding:host_id"):
        port["binding:vif_type"] = "ovs"
        port["binding:vif_details"] = {"port_filter": True, "connectivity": "l2"}
    else:
        port["binding:vif_type"] = "unbound"
        port["binding:vif_details"] = {}
