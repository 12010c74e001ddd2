"""What reconciliation decides about what ``-p`` made (kuryr.ops.reconcile_published), on the
in-memory Neutron after a crash left things behind: a forwarding to a port its endpoint no
longer holds goes, a Kuryr floating IP nothing live uses is released, what is live or not
Kuryr's stays, a young empty floating IP waits, and a release planned before a new container
published on the floating IP does not happen."""

from __future__ import annotations

import time
from pathlib import Path

from kuryr import naming
from kuryr.ops.reconcile_plan import Plan, apply
from kuryr.ops.reconcile_published import judge_floating_ips
from tests.fakes.daemon import Container, Daemon, daemon
from tests.fakes.way_out import attached, entry, fips, forwarded, world

GRACE = 30.0
LATER = 3600.0  # seconds after the resources were made: past any grace


async def judged(d: Daemon, live: set[str], later: float = LATER) -> Plan:
    plan = Plan()
    await judge_floating_ips(plan, d.neutron, live, time.time() + later, GRACE)
    return plan


def kinds(plan: Plan) -> dict[str, str]:
    return {a.ident: a.kind for a in plan.actions}


def released_by_pool(d: Daemon, c: Container) -> None:
    """The port went back to a pool while the daemon was down: its device_id is cleared."""
    port = d.port_holding(c.net, c.address)
    assert port is not None
    d.neutron.change("ports", port["id"], device_id="")


async def test_orphaned_forwardings_go_and_a_floating_ip_nothing_live_uses_is_released(
    tmp_path: Path,
) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        live, dead = await d.run(net), await d.run(net)
        await d.publish(live, [entry(80, 8080)])
        await d.publish(dead, [entry(80, 8081)])
        released_by_pool(d, dead)
        [fip] = fips(d)

        plan = await judged(d, {live.endpoint_id})
        [dead_forwarding] = [
            f["id"] for f in neutron.store.forwardings.values() if f["external_port"] == 8081
        ]
        assert kinds(plan) == {dead_forwarding: "port-forwarding"}
        assert await apply(plan) == []
        assert {f[1] for f in forwarded(d)} == {8080}

        released_by_pool(d, live)
        plan = await judged(d, set())
        assert kinds(plan) == {fip["id"]: "floating-ip"}
        assert await apply(plan) == []
        assert fips(d) == [] and forwarded(d) == set()


async def test_what_is_young_or_not_kuryr_s_stays(tmp_path: Path) -> None:
    neutron, public = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        c = await d.run(net)
        theirs = neutron.make("floatingips", {"floating_network_id": public["id"]})
        empty = neutron.make(
            "floatingips",
            {"floating_network_id": public["id"]},
            tags=naming.publish_tags(naming.TAG_PUBLISH_NET, net.neutron_id),
        )
        port = d.port_holding(net, c.address)
        assert port is not None
        # An operator's forwarding on Kuryr's floating IP: no endpoint named, never judged.
        await neutron.add_port_forwarding(
            empty["id"],
            {
                "protocol": "tcp",
                "internal_port_id": port["id"],
                "internal_ip_address": c.address,
                "internal_port": 22,
                "external_port": 2222,
            },
        )

        assert kinds(await judged(d, set())) == {}
        await neutron.delete_port_forwarding(empty["id"], next(iter(neutron.store.forwardings)))
        assert kinds(await judged(d, set(), later=0.0)) == {}
        assert kinds(await judged(d, set())) == {empty["id"]: "floating-ip"}
        assert neutron.get("floatingips", theirs["id"]) is not None


async def test_a_release_planned_before_a_new_publication_does_not_happen(
    tmp_path: Path,
) -> None:
    neutron, _ = world()
    async with daemon(tmp_path, neutron=neutron) as d:
        net = await attached(d)
        old, new = await d.run(net), await d.run(net)
        await d.publish(old, [entry(80, 8080)])
        released_by_pool(d, old)
        plan = await judged(d, set())
        assert list(kinds(plan).values()) == ["floating-ip"]

        await d.publish(new, [entry(80, 8081)])
        assert await apply(plan) == []

        assert len(fips(d)) == 1 and {f[1] for f in forwarded(d)} == {8080, 8081}
