"""How the state file (kuryr.backends.state) writes a Docker network and its subnets: JSON
that a later Kuryr reads back into the same :class:`~kuryr.backends.model.Network`."""

from __future__ import annotations

import ipaddress
from typing import Any

from kuryr.backends.model import Network, Subnet


def network_to_json(network: Network) -> dict[str, Any]:
    return {
        "docker_id": network.docker_id,
        "neutron_id": network.neutron_id,
        "mtu": network.mtu,
        "tags": list(network.tags),
        "subnets": [subnet_to_json(s) for s in network.subnets],
    }


def network_from_json(data: dict[str, Any]) -> Network:
    return Network(
        docker_id=data["docker_id"],
        neutron_id=data["neutron_id"],
        mtu=int(data["mtu"]),
        tags=list(data["tags"]),
        subnets=[subnet_from_json(s) for s in data["subnets"]],
    )


def subnet_to_json(subnet: Subnet) -> dict[str, Any]:
    return {
        "id": subnet.id,
        "network_id": subnet.network_id,
        "cidr": str(subnet.cidr),
        "gateway_ip": subnet.gateway_ip,
        "host_routes": [list(r) for r in subnet.host_routes],
        "subnetpool_id": subnet.subnetpool_id,
        "name": subnet.name,
    }


def subnet_from_json(data: dict[str, Any]) -> Subnet:
    return Subnet(
        id=data["id"],
        network_id=data["network_id"],
        cidr=ipaddress.ip_network(data["cidr"]),
        gateway_ip=data.get("gateway_ip"),
        host_routes=tuple((d, h) for d, h in data.get("host_routes", [])),
        subnetpool_id=data.get("subnetpool_id"),
        name=data.get("name", ""),
    )
