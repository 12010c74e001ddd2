"""What reconciliation decides (``kuryr gc``'s Reconciler, grace 0) about this host's ports,
given what dockerd lists: orphans go, what is in use and free pool ports stay, a port a
running endpoint holds without its bookkeeping gets it; and applying the plan changes
nothing the daemon took up again since."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from kuryr import naming
from kuryr.config import PoolConfig
from kuryr.domain.ports.port import Port
from kuryr.ops.reconcile import Reconciler
from kuryr.ops.reconcile_plan import Plan
from tests.fakes.binding import host_binders
from tests.fakes.daemon import HOST, Daemon, Net, daemon, eventually
from tests.fakes.dockerd import FakeDockerd, serving


@dataclass
class Host:
    kuryr: Daemon
    dockerd: FakeDockerd

    def reconciler(self, grace: float = 0.0) -> Reconciler:
        return Reconciler(self.kuryr.neutron, host_binders(HOST), self.dockerd.socket, grace)

    async def plan(self, grace: float = 0.0) -> Plan:
        return await self.reconciler(grace).plan()


@asynccontextmanager
async def host(tmp_path: Path, pool: PoolConfig | None = None) -> AsyncIterator[Host]:
    async with serving(tmp_path / "docker.sock") as dockerd, daemon(tmp_path, pool) as kuryr:
        yield Host(kuryr, dockerd)


def port_actions(plan: Plan) -> dict[str, str]:
    """Port id -> the kind of action planned on it."""
    kinds = ("port", "address", "pool-port", "bookkeeping")
    return {a.ident: a.kind for a in plan.actions if a.kind in kinds}


def port_id(d: Daemon, net: Net, address: str) -> str:
    port = d.port_holding(net, address)
    assert port is not None
    return str(port["id"])


async def booked(d: Daemon, net: Net, address: str, endpoint_id: str) -> None:
    def written() -> bool:
        port = d.port_holding(net, address)
        return port is not None and port["device_id"] == endpoint_id

    await eventually(written, "the journal wrote the port's bookkeeping")


async def test_a_port_whose_endpoint_dockerd_lists_stays_and_an_orphan_goes(
    tmp_path: Path,
) -> None:
    async with host(tmp_path) as h:
        net = await h.kuryr.kuryr_network()
        running = await h.kuryr.run(net)
        gone = await h.kuryr.run(net)  # dockerd lost it (crashed): it lists no such endpoint
        await booked(h.kuryr, net, running.address, running.endpoint_id)
        await booked(h.kuryr, net, gone.address, gone.endpoint_id)
        h.dockerd.running(net.docker_id, running.endpoint_id, running.address)

        plan = await h.plan()

        assert plan.docker_seen
        assert port_actions(plan) == {port_id(h.kuryr, net, gone.address): "port"}
        await h.reconciler().apply(plan)
        assert h.kuryr.port_holding(net, gone.address) is None
        assert h.kuryr.port_holding(net, running.address) is not None


async def test_free_pool_ports_stay_and_an_unclaimed_reservation_goes(tmp_path: Path) -> None:
    async with host(tmp_path, PoolConfig(min=2, max=4, batch=2, initial=2)) as h:
        net = await h.kuryr.kuryr_network()
        await eventually(
            lambda: sum(Port.from_neutron(p).in_pool for p in h.kuryr.ports(net)) == 2, "pooled"
        )
        h.dockerd.networks.add(net.docker_id)
        reserved = await h.kuryr.request_address(net.pool_id, _nth(net, 90))

        plan = await h.plan()

        assert port_actions(plan) == {port_id(h.kuryr, net, reserved): "address"}


async def test_a_running_endpoints_port_without_bookkeeping_gets_it(tmp_path: Path) -> None:
    # The daemon died before its journal wrote the port's device_id, name and tags.
    async with host(tmp_path, PoolConfig(bookkeeping_delay=3600.0)) as h:
        net = await h.kuryr.kuryr_network()
        container = await h.kuryr.run(net)
        port = port_id(h.kuryr, net, container.address)
        h.dockerd.running(net.docker_id, container.endpoint_id, container.address)

        plan = await h.plan()

        assert port_actions(plan) == {port: "bookkeeping"}
        assert await h.reconciler().apply(plan) == []
        written = h.kuryr.neutron.get("ports", port) or {}
        assert written["device_id"] == container.endpoint_id
        assert set(naming.id_tags(container.endpoint_id)) <= set(written["tags"])


async def test_nothing_younger_than_grace_and_nothing_without_dockerd_is_judged(
    tmp_path: Path,
) -> None:
    async with host(tmp_path) as h:
        net = await h.kuryr.kuryr_network()
        orphan = await h.kuryr.run(net)
        await booked(h.kuryr, net, orphan.address, orphan.endpoint_id)

        young = await h.plan(grace=60.0)
        blind = await Reconciler(
            h.kuryr.neutron, host_binders(HOST), tmp_path / "no-dockerd.sock", 0.0
        ).plan()

        assert port_actions(young) == {}
        assert not blind.docker_seen and port_actions(blind) == {}


async def test_an_orphan_the_daemon_took_up_again_after_the_plan_stays(tmp_path: Path) -> None:
    async with host(tmp_path) as h:
        net = await h.kuryr.kuryr_network()
        orphan = await h.kuryr.run(net)
        await booked(h.kuryr, net, orphan.address, orphan.endpoint_id)
        port = port_id(h.kuryr, net, orphan.address)
        plan = await h.plan()
        assert port_actions(plan) == {port: "port"}

        # Between plan and apply the port goes to a new endpoint (its device_id changes).
        h.kuryr.neutron.change("ports", port, device_id="e" * 64)

        assert await h.reconciler().apply(plan) == []
        assert h.kuryr.neutron.get("ports", port) is not None


async def test_an_orphaned_adopted_port_is_handed_back_not_deleted(tmp_path: Path) -> None:
    async with host(tmp_path) as h:
        net = await h.kuryr.kuryr_network()
        address = _nth(net, 50)
        made = h.kuryr.neutron.make(
            "ports",
            {
                "network_id": net.neutron_id,
                "fixed_ips": [{"subnet_id": net.subnet_id, "ip_address": address}],
            },
        )
        assert await h.kuryr.request_address(net.pool_id, address) == address
        container = await h.kuryr.create_endpoint(net, address)
        await h.kuryr.join(container)
        await booked(h.kuryr, net, address, container.endpoint_id)
        h.dockerd.networks.add(net.docker_id)  # the container is gone

        plan = await h.plan()
        assert port_actions(plan) == {made["id"]: "port"}
        await h.reconciler().apply(plan)

        kept = h.kuryr.neutron.get("ports", made["id"])
        assert kept is not None
        assert (kept["device_id"], kept["device_owner"], kept["binding:host_id"]) == ("", "", "")
        assert kept["tags"] == []


def _nth(net: Net, n: int) -> str:
    return str(ipaddress.ip_network(net.cidr)[n])
