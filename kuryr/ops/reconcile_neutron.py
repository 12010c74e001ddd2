"""Reconciliation of Kuryr's Neutron resources besides ports: expose security groups,
``kuryrPool-*`` subnetpools and (when asked) Kuryr networks.

Anything younger than ``grace`` seconds is kept: a start or a stop may be under way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi, Resource
from kuryr.domain import routers
from kuryr.domain.ports.port import Port
from kuryr.ops.reconcile_docker import DockerView
from kuryr.ops.reconcile_plan import Plan, Run


def age(resource: Resource, now: float) -> float:
    """Seconds since Neutron last changed ``resource`` (0 when it does not say)."""
    stamp = resource.get("updated_at") or resource.get("created_at")
    if not stamp:
        return 0.0
    parsed = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return max(0.0, now - parsed.timestamp())


async def judge_groups(
    plan: Plan, neutron: NeutronApi, endpoints: set[str], now: float, grace: float
) -> None:
    """``endpoints``: those this host's ports (or the daemon) name."""
    # Without their rules: a cloud's groups and rules are many, and this runs every pass.
    fields = ["id", "name", "tags", "created_at", "updated_at"]
    for group in await neutron.query("security-groups", {"fields": fields}):
        name = str(group.get("name") or "")
        owner = naming.id_from_tags(group.get("tags") or [])
        if not name.startswith(naming.EXPOSE_SG_PREFIX) or owner is None:
            continue
        if owner in endpoints or age(group, now) < grace:
            plan.keep("security-group")
            continue
        # The endpoint may live on another host: only a group no port anywhere has goes.
        if await neutron.query("ports", {"device_id": owner, "fields": "id"}):
            plan.keep("security-group")
            continue
        plan.add(
            "security-group",
            group["id"],
            f"{name}: its endpoint has no port",
            _deleter(neutron, "security-groups", group["id"]),
        )


async def judge_subnetpools(plan: Plan, neutron: NeutronApi, now: float, grace: float) -> None:
    for pool in await neutron.query("subnetpools"):
        name = str(pool.get("name") or "")
        if not name.startswith(naming.SUBNETPOOL_NAME_PREFIX):
            continue
        if naming.TAG_EXISTING_SUBNETPOOL in (pool.get("tags") or []):
            continue
        if age(pool, now) < grace:
            plan.keep("subnetpool")
            continue
        used = await neutron.query(
            "subnets", {"subnetpool_id": pool["id"], "fields": "id"}
        ) or await neutron.query(
            # A subnet outside the pool that serves it (an adopted one, an ip-range slice
            # on an adopted network) carries the pool's id as a tag.
            "subnets",
            {"tags": pool["id"], "fields": "id"},
        )
        if used:
            plan.keep("subnetpool")
            continue
        plan.add(
            "subnetpool",
            pool["id"],
            f"{name}: no subnet uses it",
            _deleter(neutron, "subnetpools", pool["id"]),
        )


async def judge_networks(
    plan: Plan, neutron: NeutronApi, host: str, docker: DockerView, now: float, grace: float
) -> None:
    for net in await neutron.query("networks"):
        tags = net.get("tags") or []
        docker_id = naming.id_from_tags(tags)
        if docker_id is None or naming.is_adopted_network(tags):
            continue
        if naming.creator_host(net.get("description")) not in (None, host):
            continue  # another host's Docker network: this dockerd cannot know it
        if docker_id in docker.networks or age(net, now) < grace:
            plan.keep("network")
            continue
        ports = await neutron.query("ports", {"network_id": net["id"]})
        if any(not p.device_owner.startswith("network:") for p in map(Port.from_neutron, ports)):
            plan.keep("network")
            continue
        plan.add(
            "network",
            net["id"],
            f"{net.get('name')}: Docker has no network {docker_id[:12]}",
            _network_deleter(neutron, net["id"]),
        )


def _network_deleter(neutron: NeutronApi, network_id: str) -> Run:
    async def delete() -> None:
        # A router's interface on a subnet Kuryr attached would keep the network.
        await routers.detach_network(neutron, network_id)
        await neutron.delete("networks", network_id)

    return delete


def _deleter(neutron: NeutronApi, resource: str, ident: str) -> Run:
    async def delete() -> None:
        await neutron.delete(resource, ident)

    return delete
