"""The resources of the in-memory Neutron and the rules Neutron (Zed, ML2/OVN, as the local
stack runs it) applies to them. Synchronous; a refusal is :class:`Refused`.

What was checked against the real one (tests/integration/test_neutron_fake.py): the bodies'
fields; ports get ``fa:16:3e`` MACs, random free fixed IPs, ``binding:vif_type`` ``ovs`` once
bound to a host (``unbound`` without one), status DOWN; a taken IP is 409
``IpAddressAlreadyAllocated``, a full subnet 409 ``IpAddressGenerationFailure``, a MAC in use
409 ``MacAddressInUse``, a MAC change of a bound port 409 ``PortBound``; every write bumps
``revision_number`` and a write with another revision is 412; tags in a POST body are 400
(a port's are checked, then ignored unless ``post_tags`` says ML2's
tag_ports_during_bulk_creation extension driver is on),
duplicates in a tag PUT are 400 and there is no cap on their number; a DHCP-enabled IPv4 subnet
gives the network's OVN metadata port (made with the network) its first free address; a
subnetpool's ``default_prefixlen`` is a string, the subnets of one IP version on a network all
come from the same subnetpool (or none), a CIDR it cannot give is 500
``SubnetAllocationError``, and deleting it while a subnet uses it is 400
``SubnetPoolDeleteError``; a bulk port create that fails makes no port but leaks the addresses
its other ports had: an explicit request of one is refused (409) right after (found by this
comparison; the fake keeps them until the subnet goes).
"""

from __future__ import annotations

import copy
import ipaddress
import random
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from kuryr.backends.model import allocation_pools, first_host
from kuryr.backends.neutron_api import Resource
from tests.fakes import neutron_trunks as trunks
from tests.fakes.neutron_ips import (
    Refused,
    allocate_cidr,
    check_ip,
    first_free_ip,
    new_mac,
    pick_ip,
)
from tests.fakes.neutron_schema import (
    ATTRIBUTES,
    FIP_FORWARDING_KEYS,
    FLOATINGIP_OWNER,
    MAX_MTU,
    MAX_TAG_LEN,
    METADATA_OWNER,
    NOT_FOUND,
    PROJECT,
    READ_ONLY,
    ROUTER_INTERFACE_OWNER,
    bind,
    check_delete,
    check_known,
    check_mtu,
)


class Store:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        post_tags: bool = False,
    ) -> None:
        # ML2's tag_ports_during_bulk_creation extension driver: a port POST keeps its tags.
        self.post_tags = post_tags
        self.tables: dict[str, dict[str, Resource]] = {r: {} for r in ATTRIBUTES}
        self._clock = clock
        self._rng = random.Random(seed)
        # (subnet id, address) allocated by a failed bulk port create and never freed.
        self.leaked: set[tuple[str, str]] = set()
        self.default_group = self.create("security-groups", {"name": "default"})["id"]
        # Port forwardings by id, with their floating IP's id (tests/fakes/neutron_forwardings.py).
        self.forwardings: dict[str, Resource] = {}
        # A floating IP's address allocation, until _after_create gives it its port.
        self._fip_ports: dict[str, list[dict[str, str]]] = {}

    # --- reading ------------------------------------------------------------------------------

    def get(self, resource: str, resource_id: str) -> Resource:
        found = self.tables[resource].get(resource_id)
        if found is None:
            kind, text = NOT_FOUND[resource]
            raise Refused(404, kind, text.format(resource_id))
        return found

    def render(self, resource: str, row: Resource) -> Resource:
        """The body Neutron answers (a copy: callers never share the store's rows)."""
        body = copy.deepcopy(row)
        if resource == "floatingips":
            # expose-port-forwarding-in-fip: a floating IP shows its forwardings.
            body["port_forwardings"] = [
                {k: f[k] for k in FIP_FORWARDING_KEYS}
                for f in self.forwardings.values()
                if f["floatingip_id"] == row["id"]
            ]
        if resource == "ports":
            details = trunks.trunk_details(self.tables, row)
            if details is not None:
                body["trunk_details"] = details
        if resource == "security-groups":
            rules = self.tables["security-group-rules"].values()
            body["security_group_rules"] = [
                copy.deepcopy(r) for r in rules if r["security_group_id"] == row["id"]
            ]
        return body

    def snapshot(self) -> dict[str, dict[str, Resource]]:
        return copy.deepcopy(self.tables)

    # --- writing ------------------------------------------------------------------------------

    def create(self, resource: str, attrs: dict[str, Any]) -> Resource:
        tags = self._posted_tags(resource, attrs)
        check_known(resource, attrs, ATTRIBUTES[resource] | {"project_id", "tenant_id"})
        row = copy.deepcopy(attrs)
        row = getattr(self, "_new_" + resource.replace("-", "_"))(row)
        now = self._stamp()
        project = attrs.get("project_id") or attrs.get("tenant_id") or PROJECT
        row.update(id=self._new_id(), project_id=project, tenant_id=project)
        if resource != "security-group-rules":
            row["tags"] = tags
        row.update(created_at=now, updated_at=now)
        row.setdefault("revision_number", 0)
        row.setdefault("description", "")
        self.tables[resource][row["id"]] = row
        self._after_create(resource, row)
        return row

    def update(
        self, resource: str, resource_id: str, attrs: dict[str, Any], revision: int | None
    ) -> Resource:
        row = self.get(resource, resource_id)
        check_known(resource, attrs, ATTRIBUTES[resource])
        fixed = [k for k in attrs if k in READ_ONLY.get(resource, set())]
        if fixed:
            raise Refused(400, "HTTPBadRequest", f"Cannot update read-only attribute {fixed[0]}")
        self._check_revision(row, revision)
        if resource == "ports":
            self._update_port(row, copy.deepcopy(attrs))
        elif resource == "networks" and "mtu" in attrs:
            check_mtu(attrs["mtu"])
        row.update({k: copy.deepcopy(v) for k, v in attrs.items() if k != "fixed_ips"})
        self.touch(row)
        return row

    def delete(self, resource: str, resource_id: str, revision: int | None) -> None:
        row = self.get(resource, resource_id)
        self._check_revision(row, revision)
        check_delete(self.tables, resource, row)
        if resource == "ports":
            trunks.check_port_delete(self.tables, row)
        del self.tables[resource][resource_id]
        if resource == "networks":
            for table in ("ports", "subnets"):
                for rid in [
                    k for k, v in self.tables[table].items() if v["network_id"] == row["id"]
                ]:
                    del self.tables[table][rid]
        elif resource == "subnets":
            self._subnet_gone(row)
            self.leaked = {(sid, ip) for sid, ip in self.leaked if sid != row["id"]}
        elif resource == "security-groups":
            rules = self.tables["security-group-rules"]
            for rid in [k for k, v in rules.items() if v["security_group_id"] == row["id"]]:
                del rules[rid]
        elif resource == "floatingips":
            ports = self.tables["ports"]
            for pid in [k for k, v in ports.items() if v["device_id"] == row["id"]]:
                del ports[pid]
            self._forwardings_gone(lambda f: f["floatingip_id"] == row["id"])
        elif resource == "trunks":
            trunks.deleted(self.tables, row, self.touch)
        if resource == "ports":
            # Neutron's port forwarding plugin drops what forwarded to a deleted port.
            self._forwardings_gone(lambda f: f["internal_port_id"] == row["id"])

    def _forwardings_gone(self, which: Callable[[Resource], bool]) -> None:
        for fid in [k for k, v in self.forwardings.items() if which(v)]:
            del self.forwardings[fid]

    def _posted_tags(self, resource: str, attrs: dict[str, Any]) -> list[str]:
        """The tags a create keeps: a port POST may carry them (checked as a tag PUT is), and
        Neutron keeps them only with ML2's tag_ports_during_bulk_creation driver; any other
        resource refuses them."""
        if "tags" not in attrs:
            return []
        posted = attrs.pop("tags")
        if resource != "ports":
            raise Refused(400, "HTTPBadRequest", "Attribute 'tags' not allowed in POST")
        checked = _checked_tags(posted)
        return checked if self.post_tags else []

    def set_tags(self, resource: str, resource_id: str, tags: Sequence[str]) -> list[str]:
        row = self.tables.get(resource, {}).get(resource_id)
        if row is None:
            raise Refused(
                404, "TagResourceNotFound", f"Resource {resource} {resource_id} could not be found."
            )
        tags = _checked_tags(tags)
        row["tags"] = tags
        self.touch(row)
        return list(tags)

    def add_router_interface(self, router_id: str, subnet_id: str) -> Resource:
        """The router's port on the subnet, holding its gateway address."""
        router = self.get("routers", router_id)
        subnet = self.get("subnets", subnet_id)
        if self._interfaces(router_id, subnet_id):
            raise Refused(
                400,
                "BadRequest",
                f"Bad router request: Router already has a port on subnet {subnet_id}.",
            )
        if not subnet["gateway_ip"]:
            raise Refused(
                400,
                "BadRequest",
                "Bad router request: Subnet for router interface must have a gateway IP.",
            )
        fixed = [{"subnet_id": subnet_id, "ip_address": subnet["gateway_ip"]}]
        port = self.create(
            "ports",
            {
                "network_id": subnet["network_id"],
                "device_owner": ROUTER_INTERFACE_OWNER,
                "device_id": router_id,
                "fixed_ips": fixed,
            },
        )
        port["security_groups"] = []
        self.touch(router)
        return {
            "id": router_id,
            "tenant_id": router["project_id"],
            "network_id": subnet["network_id"],
            "port_id": port["id"],
            "subnet_id": subnet_id,
            "subnet_ids": [subnet_id],
        }

    def remove_router_interface(self, router_id: str, subnet_id: str) -> None:
        router = self.get("routers", router_id)
        ports = self._interfaces(router_id, subnet_id)
        if not ports:
            raise Refused(
                404,
                "RouterInterfaceNotFoundForSubnet",
                f"Router {router_id} has no interface on subnet {subnet_id}",
            )
        for port in ports:
            del self.tables["ports"][port["id"]]
        self.touch(router)

    def _interfaces(self, router_id: str, subnet_id: str) -> list[Resource]:
        return [
            p
            for p in self.tables["ports"].values()
            if p["device_id"] == router_id
            and p["device_owner"] == ROUTER_INTERFACE_OWNER
            and any(f["subnet_id"] == subnet_id for f in p["fixed_ips"])
        ]

    def leak(self, fixed_ips: list[dict[str, str]]) -> None:
        """Neutron Zed's IPAM keeps the addresses a failed bulk port create gave its other
        ports: later creates find them taken (409) or skip them."""
        self.leaked |= {(f["subnet_id"], f["ip_address"]) for f in fixed_ips}

    def touch(self, row: Resource) -> None:
        row["revision_number"] += 1
        row["updated_at"] = self._stamp()

    # --- the rules per resource ---------------------------------------------------------------

    def _new_networks(self, row: Resource) -> Resource:
        if "mtu" in row:
            check_mtu(row["mtu"])
        row.setdefault("name", "")
        row.setdefault("admin_state_up", True)
        row.setdefault("shared", False)
        row.setdefault("mtu", MAX_MTU)
        row.setdefault("port_security_enabled", True)
        row.setdefault("router:external", False)
        row.update(
            {
                "status": "ACTIVE",
                "subnets": [],
                "revision_number": 1,
                "availability_zone_hints": [],
                "availability_zones": [],
                "ipv4_address_scope": None,
                "ipv6_address_scope": None,
                "is_default": False,
                "provider:network_type": "geneve",
                "provider:physical_network": None,
                "provider:segmentation_id": self._rng.randint(1, 65536),
            }
        )
        return row

    def _new_subnetpools(self, row: Resource) -> Resource:
        prefixes = [str(ipaddress.ip_network(p)) for p in row.get("prefixes") or []]
        version = ipaddress.ip_network(prefixes[0]).version if prefixes else 4
        row.update(prefixes=prefixes, ip_version=version)
        row["default_prefixlen"] = str(row.get("default_prefixlen") or (8 if version == 4 else 64))
        row["min_prefixlen"] = str(row.get("min_prefixlen") or (8 if version == 4 else 64))
        row["max_prefixlen"] = str(row.get("max_prefixlen") or (32 if version == 4 else 128))
        row.setdefault("name", "")
        row.setdefault("shared", False)
        row.setdefault("is_default", False)
        row.setdefault("address_scope_id", None)
        row.setdefault("default_quota", None)
        return row

    def _new_subnets(self, row: Resource) -> Resource:
        network = self.get("networks", str(row.get("network_id")))
        cidr = ipaddress.ip_network(row["cidr"]) if row.get("cidr") else None
        pool_id = row.get("subnetpool_id")
        version = int(row.get("ip_version") or 4)
        if any(
            s["subnetpool_id"] != pool_id and s["ip_version"] == version
            for s in self._subnets_of(network["id"])
        ):
            raise Refused(
                400,
                "NetworkSubnetPoolAffinityError",
                "Subnets hosted on the same network must be allocated from the same subnet pool.",
            )
        if pool_id:
            pool = self.get("subnetpools", pool_id)
            taken = [
                ipaddress.ip_network(s["cidr"])
                for s in self.tables["subnets"].values()
                if s["subnetpool_id"] == pool_id
            ]
            prefixlen = int(row.pop("prefixlen", None) or pool["default_prefixlen"])
            cidr = allocate_cidr(pool, cidr, prefixlen, taken)
        if cidr is None:
            raise Refused(400, "BadRequest", "Bad subnets request: a cidr must be specified.")
        for other in self.tables["subnets"].values():
            if other["network_id"] == network["id"] and cidr.overlaps(
                ipaddress.ip_network(other["cidr"])
            ):
                raise Refused(
                    400,
                    "InvalidInput",
                    f"Invalid input for operation: Requested subnet with cidr: {cidr} for "
                    f"network: {network['id']} overlaps with another subnet.",
                )
        gateway = row["gateway_ip"] if "gateway_ip" in row else first_host(cidr)
        row.update(cidr=str(cidr), ip_version=cidr.version, gateway_ip=gateway)
        row.setdefault("subnetpool_id", None)
        row.setdefault("name", "")
        row.setdefault("enable_dhcp", True)
        row.setdefault("host_routes", [])
        row.setdefault("dns_nameservers", [])
        row.setdefault("ipv6_ra_mode", None)
        row.setdefault("ipv6_address_mode", None)
        row.setdefault("service_types", [])
        if not row.get("allocation_pools"):
            row["allocation_pools"] = allocation_pools(cidr, {gateway} if gateway else set())
        return row

    def _new_ports(self, row: Resource) -> Resource:
        network = self.get("networks", str(row.get("network_id")))
        mac = row.get("mac_address")
        if mac:
            self._check_mac(network["id"], str(mac), None)
        else:
            row["mac_address"] = new_mac(self._macs(network["id"]), self._rng)
        wanted = row.get("fixed_ips")
        if wanted is None:
            firsts: dict[int, Resource] = {}
            for subnet in self._subnets_of(network["id"]):
                firsts.setdefault(subnet["ip_version"], subnet)
            wanted = [{"subnet_id": s["id"]} for s in firsts.values()]
        row["fixed_ips"] = self._allocate(network["id"], wanted, None)
        row.setdefault("name", "")
        row.setdefault("admin_state_up", True)
        row.setdefault("device_id", "")
        row.setdefault("device_owner", "")
        row.setdefault("binding:host_id", "")
        row.setdefault("binding:profile", {})
        row.setdefault("binding:vnic_type", "normal")
        row.setdefault("security_groups", [self.default_group])
        row.setdefault("port_security_enabled", True)
        row.setdefault("allowed_address_pairs", [])
        row.update(status="DOWN", extra_dhcp_opts=[], revision_number=1)
        bind(row)
        return row

    def _new_routers(self, row: Resource) -> Resource:
        row.setdefault("name", "")
        row.setdefault("admin_state_up", True)
        row.setdefault("external_gateway_info", None)
        row.update(status="ACTIVE", revision_number=1)
        return row

    def _new_floatingips(self, row: Resource) -> Resource:
        """An address of the external network, held by a ``network:floatingip`` port."""
        network = self.get("networks", str(row.get("floating_network_id")))
        if not network["router:external"]:
            raise Refused(
                400,
                "BadRequest",
                f"Bad floatingip request: Network {network['id']} is not a valid external network.",
            )
        wanted = (
            [{"ip_address": row["floating_ip_address"]}]
            if "floating_ip_address" in row
            else [
                {"subnet_id": s["id"]}
                for s in self._subnets_of(network["id"])
                if s["ip_version"] == 4
            ][:1]
        )
        fixed = self._allocate(network["id"], wanted, None)
        row.update(
            floating_ip_address=fixed[0]["ip_address"],
            port_id=row.get("port_id"),
            fixed_ip_address=None,
            router_id=None,
            status="DOWN",
            revision_number=0,
        )
        self._fip_ports[row["floating_ip_address"]] = fixed
        return row

    def _new_security_groups(self, row: Resource) -> Resource:
        row.setdefault("name", "")
        row.setdefault("stateful", True)
        row["revision_number"] = 1
        return row

    def _new_security_group_rules(self, row: Resource) -> Resource:
        self.get("security-groups", str(row.get("security_group_id")))
        for key in ("protocol", "port_range_min", "port_range_max", "remote_ip_prefix"):
            row.setdefault(key, None)
        row.setdefault("remote_group_id", None)
        row.setdefault("ethertype", "IPv4")
        return row

    def _new_trunks(self, row: Resource) -> Resource:
        return trunks.new_trunk(self.tables, row)

    def _after_create(self, resource: str, row: Resource) -> None:
        if resource == "trunks":
            trunks.after_create(self.tables, row, self.touch)
        elif resource == "floatingips":
            self.create(
                "ports",
                {
                    "network_id": row["floating_network_id"],
                    "device_owner": FLOATINGIP_OWNER,
                    "device_id": row["id"],
                    "fixed_ips": self._fip_ports.pop(row["floating_ip_address"]),
                },
            )["security_groups"] = []
        elif resource == "security-groups":
            for ethertype in ("IPv4", "IPv6"):
                self.create(
                    "security-group-rules",
                    {"security_group_id": row["id"], "direction": "egress", "ethertype": ethertype},
                )
        elif resource == "networks":
            self.create(
                "ports",
                {
                    "network_id": row["id"],
                    "device_owner": METADATA_OWNER,
                    "device_id": f"ovnmeta-{row['id']}",
                    "fixed_ips": [],
                    "port_security_enabled": False,
                },
            )["security_groups"] = []
        elif resource == "subnets":
            network = self.tables["networks"][row["network_id"]]
            network["subnets"].append(row["id"])
            self.touch(network)
            if row["enable_dhcp"] and row["ip_version"] == 4:
                self._metadata_address(network, row)

    def _metadata_address(self, network: Resource, subnet: Resource) -> None:
        """ML2/OVN with metadata: the network's ``network:distributed`` port holds the first
        free address of every DHCP-enabled IPv4 subnet."""
        address = first_free_ip(subnet, self._used(subnet["id"]))
        if address is None:
            return
        fixed = {"subnet_id": subnet["id"], "ip_address": address}
        port = next(p for p in self._ports_of(network["id"]) if p["device_owner"] == METADATA_OWNER)
        port["fixed_ips"].append(fixed)
        self.touch(port)

    def _subnet_gone(self, subnet: Resource) -> None:
        network = self.tables["networks"][subnet["network_id"]]
        network["subnets"].remove(subnet["id"])
        self.touch(network)
        for port in self._ports_of(network["id"]):
            port["fixed_ips"] = [f for f in port["fixed_ips"] if f["subnet_id"] != subnet["id"]]

    def _update_port(self, row: Resource, attrs: dict[str, Any]) -> None:
        seen: set[tuple[Any, Any]] = set()
        for pair in attrs.get("allowed_address_pairs") or []:
            key = (pair.get("mac_address"), pair.get("ip_address"))
            if key in seen:  # Neutron compares the strings as given
                raise Refused(
                    400,
                    "DuplicateAddressPairInRequest",
                    "Request contains duplicate address pair: "
                    f"mac_address {key[0]} ip_address {key[1]}.",
                )
            seen.add(key)
        if "mac_address" in attrs and attrs["mac_address"] != row["mac_address"]:
            self._check_mac(row["network_id"], str(attrs["mac_address"]), row["id"])
            if row["binding:vif_type"] != "unbound" and "binding:host_id" not in attrs:
                raise Refused(
                    409,
                    "PortBound",
                    f"Unable to complete operation on port {row['id']}, port is already bound, "
                    f"port type: {row['binding:vif_type']}, old_mac {row['mac_address']}, "
                    f"new_mac {attrs['mac_address']}.",
                )
        if "fixed_ips" in attrs:
            row["fixed_ips"] = self._allocate(row["network_id"], attrs["fixed_ips"], row)
        if "binding:host_id" in attrs:
            row["binding:host_id"] = attrs["binding:host_id"]
            bind(row)

    def _allocate(
        self, network_id: str, wanted: list[dict[str, str]], port: Resource | None
    ) -> list[dict[str, str]]:
        """Fixed IPs for ``wanted`` (each a subnet id, with or without its address); a port's
        own current addresses stay its own."""
        mine = {(f["subnet_id"], f["ip_address"]) for f in (port or {}).get("fixed_ips", [])}
        given: list[dict[str, str]] = []
        for entry in wanted:
            subnet = self._subnet_for(network_id, entry)
            if subnet["network_id"] != network_id:
                raise Refused(
                    400,
                    "InvalidInput",
                    f"Invalid input for operation: Failed to create port on network "
                    f"{network_id}, because fixed_ips included invalid subnet {subnet['id']}.",
                )
            used = self._used(subnet["id"]) - {ip for sid, ip in mine if sid == subnet["id"]}
            used |= {f["ip_address"] for f in given}
            address = entry.get("ip_address")
            ip = check_ip(subnet, address, used) if address else pick_ip(subnet, used, self._rng)
            given.append({"subnet_id": subnet["id"], "ip_address": ip})
        return given

    def _subnet_for(self, network_id: str, entry: dict[str, str]) -> Resource:
        """The subnet a fixed IP entry names, or (an address alone) the one holding it."""
        if entry.get("subnet_id"):
            return self.get("subnets", entry["subnet_id"])
        address = ipaddress.ip_address(entry.get("ip_address") or "")
        for subnet in self._subnets_of(network_id):
            if address in ipaddress.ip_network(subnet["cidr"]):
                return subnet
        raise Refused(
            400,
            "InvalidInput",
            f"Invalid input for operation: IP address {address} is not a valid IP for any of "
            "the subnets on the specified network.",
        )

    def _used(self, subnet_id: str) -> set[str]:
        held = {ip for sid, ip in self.leaked if sid == subnet_id}
        return held | {
            f["ip_address"]
            for p in self.tables["ports"].values()
            for f in p["fixed_ips"]
            if f["subnet_id"] == subnet_id
        }

    def _macs(self, network_id: str) -> set[str]:
        return {str(p["mac_address"]).lower() for p in self._ports_of(network_id)}

    def _check_mac(self, network_id: str, mac: str, port_id: str | None) -> None:
        others = {
            str(p["mac_address"]).lower() for p in self._ports_of(network_id) if p["id"] != port_id
        }
        if mac.lower() in others:
            raise Refused(
                409,
                "MacAddressInUse",
                f"Unable to complete operation for network {network_id}. The mac address "
                f"{mac} is in use.",
            )

    def _ports_of(self, network_id: str) -> list[Resource]:
        return [p for p in self.tables["ports"].values() if p["network_id"] == network_id]

    def _subnets_of(self, network_id: str) -> list[Resource]:
        return [s for s in self.tables["subnets"].values() if s["network_id"] == network_id]

    def _check_revision(self, row: Resource, revision: int | None) -> None:
        if revision is not None and revision != row["revision_number"]:
            raise Refused(
                412,
                "RevisionNumberConstraintFailed",
                f"Constrained to {revision}, but current revision is {row['revision_number']}",
            )

    def new_id(self) -> str:
        return self._new_id()

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _stamp(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))


def _checked_tags(tags: Sequence[str]) -> list[str]:
    tags = list(tags)
    dup = next((t for t in tags if tags.count(t) > 1), None)
    if dup is not None:
        raise Refused(
            400,
            "InvalidInput",
            f"Invalid input for operation: Duplicate items in the list: '{dup}'.",
        )
    long = next((t for t in tags if len(t) > MAX_TAG_LEN), None)
    if long is not None:
        raise Refused(400, "InvalidInput", f"Invalid input for operation: '{long}' is too long.")
    return tags
