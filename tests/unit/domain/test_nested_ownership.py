"""Which ports are a host's (kuryr.domain.ports.mine), nested and not, on the domain as
kuryr.driver.build makes it against the in-memory Neutron: a nested daemon's ports are made
unbound and marked by the VM's port in their description, found again by that mark after a
restart, and never taken by a daemon on the hypervisor they end up bound to; a daemon with
a chassis still binds its ports and asks Neutron exactly as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import Params, Resource
from kuryr.config import PoolConfig
from kuryr.domain.ports.mine import Mark, holder
from kuryr.domain.ports.port import Port
from kuryr.domain.sharing import Leaving, decide
from kuryr.ops import gc_host
from kuryr.ops.host_pools import tally
from kuryr.ops.reconcile import Reconciler
from tests.fakes.binding import host_binders
from tests.fakes.daemon import daemon, default_subnetpools, eventually
from tests.fakes.dockerd import serving
from tests.fakes.nested_vm import NestedVm
from tests.fakes.neutron import FakeNeutron

POOLS = PoolConfig(min=2, max=4, batch=2)
HYPERVISOR = "hypervisor"


class RecordingNeutron(FakeNeutron):
    """The in-memory Neutron, noting every list query's parameters."""

    def __init__(self) -> None:
        super().__init__(seed=152)
        self.queries: list[tuple[str, dict[str, Any]]] = []

    async def query(self, resource: str, params: Params | None = None) -> list[Resource]:
        self.queries.append((resource, dict(params or {})))
        return await super().query(resource, params)


def vm_mark(vm: NestedVm) -> str:
    return naming.host_description(naming.vm_host(vm.vm_port["id"]))


def pool_port(neutron: FakeNeutron, network_id: str, subnet_id: str, **fields: Any) -> Resource:
    """A pool port made behind the daemon's back (a bulk create whose answer never came)."""
    body = {
        "network_id": network_id,
        "name": naming.POOL_PORT_NAME,
        "device_owner": naming.DEVICE_OWNER,
        "fixed_ips": [{"subnet_id": subnet_id}],
        **fields,
    }
    return neutron.make("ports", body)


# --- the mark itself (pure) ----------------------------------------------------------------


def test_a_chassis_mark_is_the_binding_as_before() -> None:
    mark = Mark("compute-1")
    assert mark.fields() == {"binding:host_id": "compute-1"}
    assert mark.query() == {"device_owner": naming.DEVICE_OWNER, "binding:host_id": "compute-1"}
    assert mark.name == "compute-1" and not mark.nested
    assert Mark.named("compute-1") == mark


def test_a_vm_mark_is_the_description_and_binds_nothing() -> None:
    mark = Mark("", "b5f1c0de-0000-4000-8000-000000000015")
    assert mark.name == "vm-port:b5f1c0de-0000-4000-8000-000000000015"
    assert mark.fields() == {"description": f"kuryr host: {mark.name}"}
    assert "binding:host_id" not in mark.query()
    assert Mark.named(mark.name) == mark


def test_a_vm_port_bound_to_the_hypervisor_is_the_vms_not_the_hypervisors() -> None:
    vm = Mark("", "b5f1c0de-0000-4000-8000-000000000015")
    port = Port(
        "p1",
        device_owner=naming.DEVICE_OWNER,
        host=HYPERVISOR,
        description=vm.fields()["description"],
    )
    assert holder(port) == vm.name
    assert vm.owns(port)
    assert not Mark(HYPERVISOR).owns(port)
    assert Mark(HYPERVISOR).owns(port.replace(description=""))


# --- a nested daemon ----------------------------------------------------------------------


async def test_nested_ports_are_made_unbound_and_marked_by_the_vm_port(tmp_path: Path) -> None:
    vm = NestedVm()
    async with daemon(tmp_path, POOLS, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.vlan_devices()) == 2, "two pool ports plugged ahead")
        container = await d.run(net)

        ports = d.ports(net)
        assert ports and {p["description"] for p in ports} == {vm_mark(vm)}
        assert {p["binding:host_id"] for p in ports} == {""}, "never bound to the VM's name"
        port = d.port_holding(net, container.address)
        assert port is not None and port["id"] in vm.subports()
        await d.stop(container)
        await d.remove_network(net)
        await eventually(lambda: d.ports(net) == [], "every port of the VM deleted")
    assert vm.subports() == {} and vm.vlan_devices() == set()


async def test_a_restarted_nested_daemon_finds_its_ports_by_its_mark(tmp_path: Path) -> None:
    """After a restart the pools come back from Neutron by the VM's mark: a stray of a bulk
    create whose answer never came is taken in (even bound to the hypervisor, as a later
    Neutron's trunk driver binds subports), another host's pool port on the network is not."""
    vm = NestedVm()
    async with daemon(tmp_path, POOLS, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.vlan_devices()) == 2, "two pool ports plugged ahead")
        kept = {p["id"] for p in d.ports(net)}
    stray = pool_port(
        vm.neutron,
        net.neutron_id,
        net.subnet_id,
        description=vm_mark(vm),
        **{"binding:host_id": HYPERVISOR},
    )
    other = pool_port(vm.neutron, net.neutron_id, net.subnet_id, **{"binding:host_id": "vm2"})

    async with daemon(tmp_path, POOLS, neutron=vm.neutron, binders=vm.binders) as d:
        [pool] = d.pools.show()
        free = set(d.pools._pools[net.subnet_id].free)

        assert free == kept | {stray["id"]}, pool
        assert other["id"] not in free
        container = await d.run(net)
        assert d.port_holding(net, container.address)["id"] in kept | {stray["id"]}  # type: ignore[index]
        await d.stop(container)
        await d.remove_network(net)
        await eventually(
            lambda: {p["id"] for p in d.ports(net)} == {other["id"]}, "only the other host's"
        )
    assert vm.subports() == {} and vm.vlan_devices() == set()


async def test_a_daemon_with_a_chassis_asks_as_before_and_takes_no_vm_port(
    tmp_path: Path,
) -> None:
    """The hypervisor's own daemon: its ports bound to it, no description; its recovery
    queries are the binding queries they always were, and a VM's subport Neutron bound to
    the hypervisor is not its pool port."""
    neutron = RecordingNeutron()
    default_subnetpools(neutron)
    pools = PoolConfig(min=2, max=2, batch=2)
    async with daemon(tmp_path, pools, neutron=neutron, host=HYPERVISOR) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(d.ports(net)) == 2, "the pool filled")
        assert {p["binding:host_id"] for p in d.ports(net)} == {HYPERVISOR}
        assert {p["description"] for p in d.ports(net)} == {""}
        own = {p["id"] for p in d.ports(net)}
    vm_port = pool_port(
        neutron,
        net.neutron_id,
        net.subnet_id,
        description=naming.host_description(naming.vm_host("b5f1c0de-0000-4000-8000-0000000000aa")),
        **{"binding:host_id": HYPERVISOR},
    )
    neutron.queries.clear()

    async with daemon(tmp_path, pools, neutron=neutron, host=HYPERVISOR) as d:
        free = set(d.pools._pools[net.subnet_id].free)

    assert free == own and vm_port["id"] not in free
    mine = {"device_owner": naming.DEVICE_OWNER, "binding:host_id": HYPERVISOR}
    recovery = [q for r, q in neutron.queries if r == "ports"][:2]
    assert recovery == [
        {**mine, "tags": naming.POOL_TAG},
        {**mine, "name": naming.POOL_PORT_NAME},
    ]


# --- the operator's side ------------------------------------------------------------------


async def test_gc_of_a_vm_gone_for_good_waits_for_its_server_then_takes_only_its_ports(
    tmp_path: Path,
) -> None:
    """The VM's server is deleted, its pre-made port and trunk stay (Nova unbinds them): the
    VM's ports come out of the trunk and go; another host's port on the network stays."""
    vm = NestedVm()
    await vm.neutron.update("ports", vm.vm_port["id"], {"device_id": "nova-server-1"})
    async with daemon(tmp_path, POOLS, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.vlan_devices()) == 2, "two pool ports plugged ahead")
        ours = {p["id"] for p in d.ports(net)}
    assert set(vm.subports()) & ours
    chassis = pool_port(vm.neutron, net.neutron_id, net.subnet_id, **{"binding:host_id": "vm1"})
    name = naming.vm_host(vm.vm_port["id"])

    with pytest.raises(gc_host.HostAlive, match="attached to server nova-server-1"):
        await gc_host.plan_host(vm.neutron, name)
    await vm.neutron.update("ports", vm.vm_port["id"], {"device_id": ""})

    plan = await gc_host.plan_host(vm.neutron, name)
    assert {p.id for p in plan.ports} == ours
    await gc_host.apply(vm.neutron, plan, ())

    assert vm.subports() == {}
    assert [
        p["id"]
        for p in vm.neutron.rows("ports", {"network_id": net.neutron_id})
        if p["device_owner"] == naming.DEVICE_OWNER
    ] == [chassis["id"]]


async def test_a_vms_ports_out_of_a_deleted_trunk_are_still_its_own(tmp_path: Path) -> None:
    """A trunk deleted by someone else leaves its subports with device_owner "": the mark
    alone says whose they are."""
    vm = NestedVm()
    async with daemon(tmp_path, POOLS, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.vlan_devices()) == 2, "two pool ports plugged ahead")
        ours = {p["id"] for p in d.ports(net)}
    await vm.neutron.delete("trunks", vm.trunk["id"])
    await vm.neutron.delete("ports", vm.vm_port["id"])
    owners = {p["device_owner"] for p in vm.neutron.rows("ports", {"network_id": net.neutron_id})}
    assert "" in owners

    plan = await gc_host.plan_host(vm.neutron, naming.vm_host(vm.vm_port["id"]))

    assert {p.id for p in plan.ports} == ours


def test_status_hosts_lists_a_vms_ports_under_its_vm_port() -> None:
    vm = Mark("", "b5f1c0de-0000-4000-8000-000000000015")
    ports = [
        {
            "network_id": "n1",
            "device_owner": naming.DEVICE_OWNER,
            "name": naming.POOL_PORT_NAME,
            "binding:host_id": HYPERVISOR,
            **vm.fields(),
        },
        {
            "network_id": "n1",
            "device_owner": naming.DEVICE_OWNER,
            "name": naming.POOL_PORT_NAME,
            "binding:host_id": HYPERVISOR,
        },
    ]
    hosts = tally(ports)
    assert hosts[vm.name]["n1"]["pool"] == 1
    assert hosts[HYPERVISOR]["n1"]["pool"] == 1


async def test_reconciliation_in_a_vm_judges_the_vms_ports_and_the_hypervisor_none(
    tmp_path: Path,
) -> None:
    vm = NestedVm()
    pools = PoolConfig(max=0)
    async with (
        serving(tmp_path / "docker.sock") as dockerd,
        daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d,
    ):
        net = await d.kuryr_network()
        running = await d.run(net)
        gone = await d.run(net)  # dockerd lost it: it lists no such endpoint

        def booked() -> bool:
            held = [d.port_holding(net, c.address) or {} for c in (running, gone)]
            return [p.get("device_id") for p in held] == [running.endpoint_id, gone.endpoint_id]

        await eventually(booked, "bookkeeping written")
        dockerd.running(net.docker_id, running.endpoint_id, running.address)
        gone_port = d.port_holding(net, gone.address)
        assert gone_port is not None
        for port in d.ports(net):  # as a later Neutron's trunk driver binds subports
            await vm.neutron.update("ports", port["id"], {"binding:host_id": HYPERVISOR})

        plan = await Reconciler(vm.neutron, vm.binders, dockerd.socket, 0.0).plan()
        hypervisor = await Reconciler(
            vm.neutron, host_binders(HYPERVISOR), dockerd.socket, 0.0
        ).plan()

        judged = {a.ident: a.kind for a in plan.actions if a.kind == "port"}
        assert judged == {gone_port["id"]: "port"}
        assert not [a for a in hypervisor.actions if a.kind == "port"]


def test_a_vms_subport_keeps_a_shared_network_as_its_user_not_as_a_blocker() -> None:
    """The trunk plugin's owner on a VM's port does not make it a port outside Kuryr: the
    network Kuryr made stays for the VM, named by its VM port."""
    vm = Mark("", "b5f1c0de-0000-4000-8000-000000000015")
    creator = "c" * 64
    subport = Port(
        "p1",
        network_id="net",
        device_owner=naming.SUBPORT_OWNER,
        device_id="",
        description=vm.fields()["description"],
    )
    plan = decide(
        {"id": "net", "tags": naming.id_tags(creator)},
        [subport],
        Leaving(frozenset({creator})),
    )
    assert not plan.delete_network and plan.blockers == []
    assert plan.users == [f"ports on host {vm.name}"]
