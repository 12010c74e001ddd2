"""Reconciliation of what ``-p`` made (kuryr.domain.published): Kuryr's floating IPs and their
port forwardings.

A forwarding Kuryr made names its endpoint. It is orphaned when no live endpoint owns its
port: the endpoint is not one this host's daemon or ports know, and the port it forwards to
is gone or holds another endpoint (Neutron shows the truth for every host: a container of
another host keeps its port's device_id). A floating IP Kuryr made is released when nothing is
forwarded from it any more, or only orphans are (Neutron takes its forwardings with it), once
it is older than ``grace`` (a start may be about to forward from one just made). Forwardings
Kuryr did not make, and floating IPs without Kuryr's tag, are never touched.

A container whose endpoint the daemon still holds is unpublished by the daemon's own release
path (DeleteEndpoint, or the port reconciliation acting for it); this finds what a crash left
past that: a forwarding to a port already released, a floating IP whose last user went while
the daemon was down.
"""

from __future__ import annotations

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource
from kuryr.domain.ports.port import Port
from kuryr.domain.published import release
from kuryr.ops.reconcile_neutron import age
from kuryr.ops.reconcile_plan import Overtaken, Plan, Run


async def judge_floating_ips(
    plan: Plan, neutron: NeutronApi, endpoints: set[str], now: float, grace: float
) -> None:
    """``endpoints``: those this host's ports (or the daemon) name."""
    for fip in await neutron.query("floatingips", {"tags": naming.TAG_PUBLISH}):
        try:
            forwardings = await neutron.port_forwardings(str(fip["id"]))
        except NeutronError as exc:
            if exc.not_found:
                continue  # released meanwhile
            raise
        orphans = [f for f in forwardings if await _orphaned(neutron, f, endpoints)]
        address = fip.get("floating_ip_address")
        if len(orphans) == len(forwardings):
            if not forwardings and age(fip, now) < grace:
                plan.keep("floating-ip")
                continue
            plan.add(
                "floating-ip",
                str(fip["id"]),
                f"{address}: nothing live is published on it"
                + (f" ({len(orphans)} orphaned port forwarding(s))" if orphans else ""),
                _releaser(neutron, str(fip["id"]), {str(f["id"]) for f in orphans}),
                mark=_mark(orphans),
            )
            continue
        plan.keep("floating-ip")
        for f in orphans:
            plan.add(
                "port-forwarding",
                str(f["id"]),
                f"{address}:{f.get('external_port')}/{f.get('protocol')}: endpoint "
                f"{str(naming.forwarding_endpoint(f.get('description')))[:12]} holds no port",
                _forwarding_deleter(neutron, str(fip["id"]), str(f["id"])),
                mark=str(f.get("internal_port_id")),
            )


async def _orphaned(neutron: NeutronApi, forwarding: Resource, endpoints: set[str]) -> bool:
    endpoint = naming.forwarding_endpoint(forwarding.get("description"))
    if endpoint is None or endpoint in endpoints:
        return False
    raw = await neutron.show("ports", str(forwarding.get("internal_port_id")))
    return raw is None or Port.from_neutron(raw).device_id != endpoint


def _mark(orphans: list[Resource]) -> str:
    """What the release is judged on: the forwardings found orphaned (a new one on the
    floating IP starts the confirmation over)."""
    return ",".join(sorted(str(f["id"]) for f in orphans))


def _releaser(neutron: NeutronApi, fip_id: str, judged: set[str]) -> Run:
    async def run() -> None:
        # A container may have published on it since the plan: then it stays.
        try:
            now = {str(f["id"]) for f in await neutron.port_forwardings(fip_id)}
        except NeutronError as exc:
            if exc.not_found:
                return
            raise
        if now - judged:
            raise Overtaken(f"floating IP {fip_id} publishes a new port")
        await release(neutron, fip_id)

    return run


def _forwarding_deleter(neutron: NeutronApi, fip_id: str, forwarding_id: str) -> Run:
    async def run() -> None:
        await neutron.delete_port_forwarding(fip_id, forwarding_id)

    return run
