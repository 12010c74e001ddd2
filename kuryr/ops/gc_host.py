"""``kuryr gc --host NAME [--apply]``: what a host gone for good keeps in Neutron.

A host's ports stay while it is down: they belong to its containers, which come back with it.
A host that will not come back would keep them, and every Neutron network it used
(kuryr.domain.sharing), forever. Asked explicitly, this removes its Kuryr ports (containers',
pool ports, reservations) and its anchors, drops its claims on the networks it used, and
finishes what the last one out of each network does. It refuses a host whose chassis Neutron
reports alive (its OVN controller agent), or, for a VM's daemon (``vm-port:<id>``,
kuryr.domain.ports.mine), whose VM port is still attached to a server; a dry run is the
default. A VM's ports still in its trunk are taken out of it first (Neutron deletes no
subport). The ``kuryrPool-*`` subnetpools of the subnets it removes go too, once no subnet
uses them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Collection
from dataclasses import dataclass, field

from kuryr import naming
from kuryr.backends.binding.nested import VmPort
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.config import Config
from kuryr.domain import kuryr_pools, sharing
from kuryr.domain.ports.mine import Mark
from kuryr.domain.ports.port import Port
from kuryr.errors import KuryrError
from kuryr.ops import neutron_cli


class HostAlive(KuryrError):
    """The host's chassis is alive: it is not gone, its ports are its own."""


@dataclass
class NetworkPlan:
    network_id: str
    leaving: sharing.Leaving
    outcome: str  # what leaving does to the network, for the report


@dataclass
class HostPlan:
    host: str
    ports: list[Port] = field(default_factory=list)
    networks: list[NetworkPlan] = field(default_factory=list)


async def check_gone(neutron: NeutronApi, host: str) -> None:
    """Refuse while Neutron reports the host's chassis alive, or a VM's port attached to a
    server (or cannot tell)."""
    mark = Mark.named(host)
    try:
        if mark.nested:
            raw = await neutron.show("ports", mark.vm_port)
            server = Port.from_neutron(raw).device_id if raw is not None else ""
            if server:
                raise HostAlive(
                    f"host {host}'s VM port is attached to server {server}: its ports are its own"
                )
            return
        agents = await neutron.query("agents")
    except NeutronError as exc:
        raise HostAlive(f"cannot tell whether host {host}'s chassis is alive: {exc}") from exc
    alive = [a for a in agents if a.get("host") == host and a.get("alive")]
    if alive:
        raise HostAlive(
            f"host {host}'s chassis is alive ({alive[0].get('agent_type')} "
            f"{alive[0].get('id')}): its ports are its own"
        )


async def plan_host(neutron: NeutronApi, host: str) -> HostPlan:
    await check_gone(neutron, host)
    plan = HostPlan(host)
    mark = Mark.named(host)
    found = await neutron.query("ports", mark.fields())
    ports = list(map(Port.from_neutron, found))
    plan.ports = [p for p in ports if mark.owns(p) or (p.is_anchor and mark.marks(p))]
    network_ids = {p.network_id for p in plan.ports}
    created = await neutron.query("networks", {"description": naming.creator_description(host)})
    network_ids |= {str(n["id"]) for n in created}
    for network_id in sorted(network_ids):
        network = await neutron.show("networks", network_id)
        if network is not None:
            plan.networks.append(await _network_plan(neutron, network, plan))
    return plan


async def _network_plan(neutron: NeutronApi, network: Resource, plan: HostPlan) -> NetworkPlan:
    mine = [p for p in plan.ports if p.network_id == network["id"]]
    docker_ids = {p.device_id for p in mine if p.is_anchor}
    made: set[str] = set()
    for anchor in (p for p in mine if p.is_anchor):
        made |= naming.anchor_subnets(anchor.tags)[1]
    if naming.creator_host(network.get("description")) == plan.host:
        creators = [
            low for low, adopted in naming.tag_claims(network["tags"]).items() if not adopted
        ]
        docker_ids |= set(creators)
    leaving = sharing.Leaving(frozenset(docker_ids), frozenset(p.id for p in mine), frozenset(made))
    ports = await sharing.Sharing(neutron).ports(str(network["id"]))
    decided = sharing.decide(network, ports, leaving)
    if decided.delete_network:
        outcome = "network deleted (nobody else uses it)"
    elif decided.blockers:
        outcome = f"network kept for ports outside Kuryr: {', '.join(decided.blockers[:5])}"
    elif decided.users:
        outcome = f"network kept for: {'; '.join(decided.users)}"
    else:
        outcome = "network kept (not Kuryr's); Kuryr's tags and unused subnets removed"
    return NetworkPlan(str(network["id"]), leaving, outcome)


async def apply(neutron: NeutronApi, plan: HostPlan, default_pools: Collection[str]) -> None:
    """Leave each network as the host would have, then delete the ``kuryrPool-*`` subnetpools
    of the subnets removed (the host's ReleasePool will never come)."""
    await _out_of_trunk(neutron, plan)
    leaver = sharing.Sharing(neutron)
    for network in plan.networks:
        for pool_id in sorted(await leaver.leave(network.network_id, network.leaving)):
            await kuryr_pools.cleanup(neutron, pool_id, default_pools)


async def _out_of_trunk(neutron: NeutronApi, plan: HostPlan) -> None:
    """A VM's ports still subports of its trunk (the VM went, its port and trunk stayed)."""
    mark = Mark.named(plan.host)
    raw = await neutron.show("ports", mark.vm_port) if mark.nested else None
    if raw is None:
        return
    vm = VmPort.from_neutron(raw)
    ours = [p.id for p in plan.ports if p.id in vm.subports]
    if vm.trunk_id is not None and ours:
        await neutron.remove_subports(vm.trunk_id, ours)


async def _work(
    neutron: NeutronApi, host: str, apply_it: bool, default_pools: Collection[str]
) -> HostPlan:
    plan = await plan_host(neutron, host)
    if apply_it:
        await apply(neutron, plan, default_pools)
    return plan


def _print(plan: HostPlan, args: argparse.Namespace) -> None:
    if args.json:
        report = {
            "host": plan.host,
            "applied": args.apply,
            "ports": [
                {"id": p.id, "network_id": p.network_id, "device_owner": p.device_owner}
                for p in plan.ports
            ],
            "networks": [{"id": n.network_id, "outcome": n.outcome} for n in plan.networks],
        }
        print(json.dumps(report, indent=2))
        return
    verb = "deleted" if args.apply else "would delete"
    for port in plan.ports:
        kind = "anchor" if port.is_anchor else "port"
        print(f"{verb}: {kind} {port.id} on network {port.network_id}")
    for network in plan.networks:
        print(f"network {network.network_id}: {network.outcome}")
    if not args.apply:
        print("dry run: nothing changed (--apply to do it)")


def main(args: argparse.Namespace, config: Config) -> int:
    defaults = (config.neutron.default_subnetpool_v4, config.neutron.default_subnetpool_v6)
    plan = neutron_cli.run(
        "kuryr gc --host", config, lambda n: _work(n, args.host, args.apply, defaults)
    )
    if plan is None:
        return 1
    _print(plan, args)
    return 0
