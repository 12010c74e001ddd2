"""Trunks of the in-memory Neutron (``/trunks``, ``add_subports``, ``remove_subports``), with
the rules Neutron Zed's trunk plugin and its OVN driver apply (neutron/services/trunk:
plugin.py, rules.py, drivers/ovn/trunk_driver.py, as installed on the local stack).

A trunk's parent port is in no other trunk and is no subport; a subport is not the parent, in
no trunk yet, has no ``device_id`` (409 ``PortInUse``: "not actively used for other
purposes"), has a ``vlan`` segmentation id in 1..4094 (400) that the trunk does not carry yet
(409 ``DuplicateSubPort``); a request is made all or none. The OVN driver then makes each
subport ``device_owner`` ``trunk:subport``, gives it the parent's status and
``binding:profile`` ``parent_name``/``tag``, and ``binding:vif_type`` ``ovs``; a removed
subport gets ``device_owner`` ``""``, loses them, and is ``unbound``. A port in a trunk cannot
be deleted (409 ``PortInUseAsSubPort`` / ``PortInUseAsTrunkParent``). A parent port's body
shows ``trunk_details``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kuryr.backends.neutron_api import Resource
from tests.fakes.neutron_ips import Refused

Tables = dict[str, dict[str, Resource]]

SUBPORT_OWNER = "trunk:subport"
VLAN = "vlan"
MIN_VLAN, MAX_VLAN = 1, 4094


def new_trunk(tables: Tables, row: Resource) -> Resource:
    """A trunk's own fields, its parent and its initial subports checked (store.create
    stamps the standard ones)."""
    parent = _port(tables, str(row.get("port_id") or ""))
    _usable(tables, parent["id"], as_parent=True)
    row.setdefault("name", "")
    row.setdefault("admin_state_up", True)
    subports = _checked(tables, None, parent, list(row.get("sub_ports") or []))
    row.update(sub_ports=subports, status="ACTIVE", revision_number=1)
    return row


def after_create(tables: Tables, row: Resource, touch: Callable[[Resource], None]) -> None:
    parent = tables["ports"][row["port_id"]]
    for subport in row["sub_ports"]:
        _set(tables["ports"][subport["port_id"]], parent, subport["segmentation_id"], touch)


def add_subports(
    tables: Tables, trunk_id: str, subports: list[dict[str, Any]], touch: Callable[[Resource], None]
) -> Resource:
    trunk = _trunk(tables, trunk_id)
    _managed(trunk)
    parent = tables["ports"][trunk["port_id"]]
    added = _checked(tables, trunk, parent, subports)
    trunk["sub_ports"].extend(added)
    for subport in added:
        _set(tables["ports"][subport["port_id"]], parent, subport["segmentation_id"], touch)
    trunk["status"] = "ACTIVE"
    touch(trunk)
    return render(tables, trunk)


def remove_subports(
    tables: Tables, trunk_id: str, subports: list[dict[str, Any]], touch: Callable[[Resource], None]
) -> Resource:
    trunk = _trunk(tables, trunk_id)
    _managed(trunk)
    _basic(subports, segmentation=False)
    current = {s["port_id"]: s for s in trunk["sub_ports"]}
    for subport in subports:
        if subport["port_id"] not in current:
            raise Refused(
                404,
                "SubPortNotFound",
                f"SubPort {subport['port_id']} on trunk {trunk_id} could not be found.",
            )
    gone = {s["port_id"] for s in subports}
    trunk["sub_ports"] = [s for s in trunk["sub_ports"] if s["port_id"] not in gone]
    for port_id in gone:
        port = tables["ports"].get(port_id)
        if port is not None:
            _unset(port, touch)
    trunk["status"] = "ACTIVE"
    touch(trunk)
    return render(tables, trunk)


def deleted(tables: Tables, trunk: Resource, touch: Callable[[Resource], None]) -> None:
    """The OVN driver unsets the subports of a deleted trunk."""
    for subport in trunk["sub_ports"]:
        port = tables["ports"].get(subport["port_id"])
        if port is not None:
            _unset(port, touch)


def check_port_delete(tables: Tables, port: Resource) -> None:
    for trunk in tables["trunks"].values():
        if any(s["port_id"] == port["id"] for s in trunk["sub_ports"]):
            raise Refused(
                409,
                "PortInUseAsSubPort",
                f"Port {port['id']} is currently a subport for trunk {trunk['id']}.",
            )
        if trunk["port_id"] == port["id"]:
            raise Refused(
                409,
                "PortInUseAsTrunkParent",
                f"Port {port['id']} is currently a parent port for trunk {trunk['id']}.",
            )


def trunk_details(tables: Tables, port: Resource) -> dict[str, Any] | None:
    """What a parent port's body shows of its trunk (subports with their MACs)."""
    trunk = next((t for t in tables["trunks"].values() if t["port_id"] == port["id"]), None)
    if trunk is None:
        return None
    subports = []
    for subport in trunk["sub_ports"]:
        shown = dict(subport)
        held = tables["ports"].get(subport["port_id"])
        if held is not None:
            shown["mac_address"] = held["mac_address"]
        subports.append(shown)
    return {"trunk_id": trunk["id"], "sub_ports": subports}


def render(tables: Tables, trunk: Resource) -> Resource:
    return copy.deepcopy(trunk)


# --- the rules ---------------------------------------------------------------------------------


def _trunk(tables: Tables, trunk_id: str) -> Resource:
    trunk = tables["trunks"].get(trunk_id)
    if trunk is None:
        raise Refused(404, "TrunkNotFound", f"Trunk {trunk_id} could not be found.")
    return trunk


def _port(tables: Tables, port_id: str) -> Resource:
    port = tables["ports"].get(port_id)
    if port is None:
        raise Refused(404, "PortNotFound", f"Port {port_id} could not be found.")
    return port


def _managed(trunk: Resource) -> None:
    if not trunk["admin_state_up"]:
        raise Refused(409, "TrunkDisabled", f"Trunk {trunk['id']} is currently disabled.")


def _basic(subports: list[dict[str, Any]], segmentation: bool = True) -> None:
    """neutron_lib's validate_subports: a port id each, no port and no segmentation twice."""
    ports: set[str] = set()
    segments: set[tuple[Any, Any]] = set()
    for subport in subports:
        if not isinstance(subport, dict) or not subport.get("port_id"):
            raise _invalid(f"A valid port UUID must be specified: {subport!r}")
        if subport["port_id"] in ports:
            raise _invalid(f"Non unique port UUID {subport['port_id']}")
        ports.add(subport["port_id"])
        if segmentation and "segmentation_id" in subport:
            key = (subport.get("segmentation_type"), subport.get("segmentation_id"))
            if key in segments:
                raise _invalid(f"Non unique segmentation {key}")
            segments.add(key)


def _checked(
    tables: Tables, trunk: Resource | None, parent: Resource, subports: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    _basic(subports)
    carried = {s["segmentation_id"] for s in trunk["sub_ports"]} if trunk else set()
    parent_mtu = tables["networks"][parent["network_id"]]["mtu"]
    made: list[dict[str, Any]] = []
    for subport in subports:
        port_id = subport["port_id"]
        if port_id == parent["id"]:
            raise _in_use("ParentPortInUse", port_id)
        port = _port(tables, port_id)
        mtu = tables["networks"][port["network_id"]]["mtu"]
        if mtu > parent_mtu:
            raise Refused(
                409,
                "SubPortMtuGreaterThanTrunkPortMtu",
                f"MTU {mtu} of subport {port_id} cannot be greater than MTU {parent_mtu} of "
                f"trunk {parent['id']}.",
            )
        if "segmentation_type" not in subport or "segmentation_id" not in subport:
            raise _invalid(f"Invalid subport details '{subport}': missing segmentation information")
        kind, number = subport["segmentation_type"], subport["segmentation_id"]
        if kind != VLAN:
            raise _invalid(f"Unknown segmentation_type '{kind}'")
        if not isinstance(number, int) or not MIN_VLAN <= number <= MAX_VLAN:
            raise _invalid(f"Segmentation ID '{number}' is not in range")
        _usable(tables, port_id, as_parent=False)
        if number in carried:
            raise Refused(
                409,
                "DuplicateSubPort",
                f"segmentation_type {kind} and segmentation_id {number} already in use on "
                f"trunk {trunk['id'] if trunk else ''}.",
            )
        carried.add(number)
        made.append({"port_id": port_id, "segmentation_type": kind, "segmentation_id": number})
    return made


def _usable(tables: Tables, port_id: str, as_parent: bool) -> None:
    """rules.TrunkPortValidator: in no trunk yet; a subport-to-be has no device_id."""
    for trunk in tables["trunks"].values():
        if any(s["port_id"] == port_id for s in trunk["sub_ports"]):
            raise _in_use("TrunkPortInUse", port_id, "is in use by another trunk.")
        if trunk["port_id"] == port_id:
            raise _in_use("ParentPortInUse", port_id)
    port = tables["ports"][port_id]
    if not as_parent and port["device_id"]:
        raise Refused(
            409,
            "PortInUse",
            f"Unable to complete operation on port {port_id} for network "
            f"{port['network_id']}. Port already has an attached device {port['device_id']}.",
        )


def _set(port: Resource, parent: Resource, tag: int, touch: Callable[[Resource], None]) -> None:
    port["device_owner"] = SUBPORT_OWNER
    port["status"] = parent["status"]
    port["binding:profile"] = {**port["binding:profile"], "parent_name": parent["id"], "tag": tag}
    port["binding:vif_type"] = "ovs"
    touch(port)


def _unset(port: Resource, touch: Callable[[Resource], None]) -> None:
    port["device_owner"] = ""
    profile = dict(port["binding:profile"])
    profile.pop("parent_name", None)
    profile.pop("tag", None)
    port["binding:profile"] = profile
    port["binding:vif_type"] = "unbound"
    port["binding:vif_details"] = {}
    port["status"] = "DOWN"
    touch(port)


def _invalid(message: str) -> Refused:
    return Refused(400, "InvalidInput", f"Invalid input for operation: {message}.")


def _in_use(kind: str, port_id: str, what: str = "is currently in use.") -> Refused:
    return Refused(409, kind, f"Port {port_id} {what}")
