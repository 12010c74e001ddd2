"""What reconciliation decides about ``--expose`` security groups (kuryr.ops.reconcile_neutron
.judge_groups), on the in-memory Neutron: a Kuryr group whose endpoint has no port anywhere
goes; one whose endpoint this host knows, or has a port on another host, or is still young,
stays; a group that is not Kuryr's is never touched. The groups are listed without their
rules (each pass lists every group of the cloud)."""

from __future__ import annotations

import secrets
import time

from kuryr import naming
from kuryr.backends.neutron_api import Params, Resource
from kuryr.ops.reconcile_neutron import judge_groups
from kuryr.ops.reconcile_plan import Plan
from tests.fakes.neutron import FakeNeutron

GRACE = 30.0
LATER = 3600.0  # seconds after the groups were made: past any grace


async def expose_group(neutron: FakeNeutron) -> tuple[str, str]:
    """A Kuryr expose group for a fresh endpoint id: (group id, endpoint id)."""
    endpoint = secrets.token_hex(32)
    name = naming.EXPOSE_SG_PREFIX + endpoint[:12]
    group = await neutron.create("security-groups", {"name": name})
    await neutron.set_tags("security-groups", group["id"], naming.id_tags(endpoint))
    return group["id"], endpoint


async def judged(neutron: FakeNeutron, known: set[str], later: float = LATER) -> Plan:
    plan = Plan()
    await judge_groups(plan, neutron, known, time.time() + later, GRACE)
    return plan


async def test_only_a_kuryr_group_whose_endpoint_has_no_port_goes() -> None:
    neutron = FakeNeutron()
    orphan, _ = await expose_group(neutron)
    here, here_endpoint = await expose_group(neutron)
    elsewhere, elsewhere_endpoint = await expose_group(neutron)
    network = await neutron.create("networks", {"name": "n"})
    await neutron.create("ports", {"network_id": network["id"], "device_id": elsewhere_endpoint})
    await neutron.create("security-groups", {"name": "someone-elses"})

    plan = await judged(neutron, {here_endpoint})

    assert [(a.kind, a.ident) for a in plan.actions] == [("security-group", orphan)]
    assert plan.kept == {"security-group": 2}
    assert {here, elsewhere}.isdisjoint(a.ident for a in plan.actions)


class Listing(FakeNeutron):
    """Records the parameters of every list."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[tuple[str, Params | None]] = []

    async def query(self, resource: str, params: Params | None = None) -> list[Resource]:
        self.listed.append((resource, params))
        return await super().query(resource, params)


async def test_a_young_group_waits_and_the_groups_are_listed_without_rules() -> None:
    neutron = Listing()
    await expose_group(neutron)

    assert (await judged(neutron, set(), later=0.0)).actions == []
    [params] = [p for r, p in neutron.listed if r == "security-groups"]
    assert params is not None
    assert "security_group_rules" not in params["fields"]
    assert {"id", "name", "tags"} <= set(params["fields"])
