"""``--expose`` / ``-p``: a per-endpoint Neutron security group opening the exposed ports.

The group (``kuryr_expose_<endpoint id[:12]>``, tagged with the endpoint id) is added beside
the port's other groups and removed again on revoke. Both directions are idempotent, and an
endpoint with nothing exposed costs no Neutron call.

Where a binder says another port's groups filter its ports' traffic (nested ``macvlan``: the
VM's port, :meth:`kuryr.backends.binding.base.Binder.filtering_port`), no group is made: one
on the container's unbound port would show in Neutron as if it filtered, and filter nothing.
The exposure is accepted all the same (an image's ``EXPOSE`` arrives as ``--expose`` does, so
refusing it would refuse ordinary images), with one warning naming the port whose groups
decide.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi
from kuryr.domain.endpoints import Binders, Endpoint
from kuryr.domain.ports import desired
from kuryr.domain.ports.port import Port
from kuryr.errors import InvalidRequest, KuryrError
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

PROTOCOLS = {6: "tcp", 17: "udp"}
ETHERTYPES = ("IPv4", "IPv6")


def exposed_ports(options: dict[str, Any]) -> list[tuple[str, int]]:
    """Sorted unique (protocol name, port) pairs from Docker's endpoint options."""
    raw = options.get(p.OPT_EXPOSED_PORTS) or []
    if not isinstance(raw, list):
        raise InvalidRequest(f"{p.OPT_EXPOSED_PORTS} must be a list")
    found: set[tuple[str, int]] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidRequest(f"{p.OPT_EXPOSED_PORTS} entries must be objects")
        proto, port = item.get("Proto"), item.get("Port")
        if proto not in PROTOCOLS:
            raise InvalidRequest(f"exposed port protocol {proto!r} is not TCP (6) or UDP (17)")
        # bool is an int in Python, but true is no port number.
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise InvalidRequest(f"exposed port {port!r} is not a port number")
        found.add((PROTOCOLS[proto], port))
    return sorted(found)


def rules(group_id: str, ports: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """One ingress rule per (protocol, port) and ethertype."""
    return [
        {
            "security_group_id": group_id,
            "direction": "ingress",
            "ethertype": ethertype,
            "protocol": proto,
            "port_range_min": port,
            "port_range_max": port,
        }
        for proto, port in ports
        for ethertype in ETHERTYPES
    ]


def _names(ports: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{port}/{proto}" for proto, port in ports)


class SecurityGroups:
    def __init__(self, neutron: NeutronApi, binders: Binders) -> None:
        self._neutron = neutron
        self._binders = binders

    async def program(
        self,
        endpoint: Endpoint,
        options: dict[str, Any],
        published: Iterable[tuple[str, int]] = (),
    ) -> None:
        """``published``: the (protocol, container port) pairs ``-p`` forwards, opened too
        (Docker lists them among the exposed ports already)."""
        ports = sorted(set(exposed_ports(options)) | set(published))
        if not ports or endpoint.expose_sg is not None:
            return
        binder = self._binders.for_vif_type(endpoint.port.vif_type or "ovs")
        elsewhere = await binder.filtering_port()
        if elsewhere is not None:
            LOG.warning(
                "endpoint %s: exposed ports %s are not opened by Kuryr: the traffic of its "
                "port %s passes through port %s, whose security groups alone filter it "
                "(for every container there); open them in that port's groups",
                endpoint.endpoint_id[:12],
                _names(ports),
                endpoint.port_id,
                elsewhere,
            )
            return
        group = await self._find(endpoint) or await self._create(endpoint, ports)
        try:
            current = list(endpoint.port.security_groups)
            if group not in current:
                updated = await self._neutron.update(
                    "ports", endpoint.port_id, desired.in_groups([*current, group])
                )
                endpoint.port = endpoint.port.replace(
                    security_groups=Port.from_neutron(updated).security_groups
                )
        except KuryrError:
            await self._neutron.delete("security-groups", group)
            raise
        endpoint.expose_sg = group

    async def _create(self, endpoint: Endpoint, ports: list[tuple[str, int]]) -> str:
        group = await self._neutron.create(
            "security-groups",
            {
                "name": naming.expose_sg_name(endpoint.endpoint_id),
                "description": "Docker exposed ports of endpoint " + endpoint.endpoint_id,
            },
        )
        try:
            await self._neutron.set_tags(
                "security-groups", group["id"], naming.id_tags(endpoint.endpoint_id)
            )
            await self._neutron.create_bulk("security-group-rules", rules(group["id"], ports))
        except KuryrError:
            await self._neutron.delete("security-groups", group["id"])
            raise
        return str(group["id"])

    async def _find(self, endpoint: Endpoint) -> str | None:
        found = await self._neutron.query(
            "security-groups", {"name": naming.expose_sg_name(endpoint.endpoint_id), "fields": "id"}
        )
        return str(found[0]["id"]) if found else None

    async def revoke(self, endpoint: Endpoint) -> None:
        group = endpoint.expose_sg
        if group is None:
            # Memory is empty after a restart: the port's groups tell whether one may exist.
            if len(endpoint.port.security_groups) < 2:
                return
            group = await self._find(endpoint)
            if group is None:
                return
        current = list(endpoint.port.security_groups)
        if group in current:
            remaining = [g for g in current if g != group]
            try:
                updated = await self._neutron.update(
                    "ports", endpoint.port_id, desired.in_groups(remaining)
                )
                endpoint.port = endpoint.port.replace(
                    security_groups=Port.from_neutron(updated).security_groups
                )
            except KuryrError as exc:
                if not getattr(exc, "not_found", False):
                    raise
        await self._neutron.delete("security-groups", group)
        endpoint.expose_sg = None
