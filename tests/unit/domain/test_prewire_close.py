"""Stopping the daemon while VIFs are plugged ahead (kuryr.domain.ports.prewire.Prewire.close):
a plug under way finishes and stays, so the restart that follows keeps its VIF; a plug still
queued is dropped."""

from __future__ import annotations

import asyncio

from kuryr.domain.ports.port import Port
from kuryr.domain.ports.prewire import Prewire
from tests.fakes.binding import FakeBinders
from tests.fakes.neutron import FakeNeutron


async def pool_ports(count: int) -> list[Port]:
    neutron = FakeNeutron(seed=7)
    net = neutron.make("networks", {"name": "close-net"})
    neutron.make("subnets", {"network_id": net["id"], "cidr": "10.155.0.0/24", "ip_version": 4})
    attrs = {"network_id": net["id"], "binding:host_id": "vm"}
    made = [neutron.make("ports", attrs) for _ in range(count)]
    return [Port.from_neutron(raw) for raw in made]


async def test_a_plug_under_way_at_close_finishes_and_a_queued_one_is_dropped() -> None:
    binders = FakeBinders()
    binders.binder.plug_delay = 0.3

    async def deleted(_: str) -> None:
        return None

    prewire = Prewire(binders, lambda _: 1450, 5.0, deleted=deleted, width=1)
    under_way, queued = await pool_ports(2)
    prewire.ahead(under_way)
    prewire.ahead(queued)
    await asyncio.sleep(0.1)  # the first plug holds the one slot, the second waits for it

    await prewire.close()

    assert set(binders.binder.wired) == {under_way.id}
    assert binders.binder.unplugs() == []
    assert binders.binder.plugs() == [under_way.id]
