"""A nested ``vlan`` daemon's containers from network create to network removal, on the
domain as kuryr.driver.build makes it, against the in-memory Neutron's trunks and an
in-memory VM namespace: pool ports become subports ahead of their containers (Join makes no
Neutron call), a stopped container's subport stays with its pool port, and a network removal
leaves no subport, no VLAN id and no VLAN device behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuryr import naming
from kuryr.backends.binding.macvlan import device_mac
from kuryr.backends.state import State
from kuryr.config import PoolConfig
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.port import Port
from kuryr.domain.ports.prewire import Prewire
from kuryr.domain.quiet import Quiet
from kuryr.ops.reconcile import Reconciler
from tests.fakes.daemon import daemon, eventually
from tests.fakes.dockerd import serving
from tests.fakes.nested_vm import NestedVm


async def test_pool_ports_are_subports_ahead_and_removal_leaves_nothing(tmp_path: Path) -> None:
    vm = NestedVm()
    pools = PoolConfig(min=2, max=4, batch=2)
    async with daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.vlan_devices()) == 2, "two pool ports plugged ahead")
        assert len(vm.subports()) == 2

        container = await d.run(net)

        port = d.port_holding(net, container.address)
        assert port is not None and port["id"] in vm.subports()
        assert port["device_owner"] == naming.DEVICE_OWNER
        assert port["binding:profile"]["parent_name"] == vm.trunk["port_id"]
        assert vm.links.links[f"t_c{port['id'][:11]}"].vlan_id == vm.subports()[port["id"]]
        await d.stop(container)
        await d.remove_network(net)

        await eventually(lambda: vm.subports() == {}, "every subport removed")
        await eventually(lambda: d.ports(net) == [], "every pool port deleted")
        assert vm.vlan_devices() == set()
        assert vm.binder.ids.held() == {}


async def test_a_start_without_a_pool_plugs_at_create_endpoint_before_its_bookkeeping(
    tmp_path: Path,
) -> None:
    """Neutron takes no port with a device_id into a trunk (PortInUse): the subport is
    added before CreateEndpoint records the bookkeeping that writes it, and Join finds it."""
    vm = NestedVm()
    async with daemon(tmp_path, PoolConfig(max=0), neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        container = await d.create_endpoint(net, await d.request_address(net.pool_id))
        [port] = [p for p in d.ports(net) if p["id"] in vm.subports()]
        await eventually(
            lambda: d.port_holding(net, container.address)["device_id"] != "",  # type: ignore[index]
            "bookkeeping written",
        )
        adds = vm.neutron.calls[("PUT", "trunks")]

        await d.join(container)

        assert vm.neutron.calls[("PUT", "trunks")] == adds, "Join plugged nothing again"
        assert f"t_c{port['id'][:11]}" in vm.vlan_devices()
        await d.stop(container)
        await eventually(lambda: vm.subports() == {}, "the deleted port's subport removed")
        await eventually(lambda: d.ports(net) == [], "the port deleted")
        assert vm.vlan_devices() == set()


async def test_a_docker_ipam_start_makes_its_port_without_device_id_to_plug_it(
    tmp_path: Path,
) -> None:
    """Docker's IPAM, no pool port with the address (a dual-stack start never has one): the
    port CreateEndpoint makes has no device_id yet, else Neutron refuses it as a subport
    (live: "cannot become a subport: it has a device_id"); the journal writes it after."""
    vm = NestedVm()
    async with daemon(tmp_path, PoolConfig(max=0), neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.docker_network("10.70.0.0/24")
        container = await d.run(net)
        port = d.port_holding(net, container.address)
        assert port is not None and port["id"] in vm.subports()
        await eventually(
            lambda: (
                d.port_holding(net, container.address)["device_id"]  # type: ignore[index]
                == container.endpoint_id
            ),
            "bookkeeping written",
        )
        await d.stop(container)
        await d.remove_network(net)
        await eventually(lambda: vm.subports() == {}, "the deleted port's subport removed")
        assert vm.vlan_devices() == set()


async def test_unbound_nested_ports_are_still_plugged_ahead(tmp_path: Path) -> None:
    """ovn-controller claims no subport whose binding:host_id names a host without a chassis
    (the VM's name: test_nested_subport_ovn.py), so nested ports may have to stay unbound:
    nested binders plug them all the same (Binder.plugs_unbound), ahead of their containers."""
    vm = NestedVm(host="")
    pools = PoolConfig(min=2, max=4, batch=2)
    async with daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders, host="") as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.vlan_devices()) == 2, "two pool ports plugged ahead")
        assert {p["binding:vif_type"] for p in d.ports(net) if p["id"] not in vm.subports()} <= {
            "unbound"
        }
        container = await d.run(net)
        port = d.port_holding(net, container.address)
        assert port is not None and port["id"] in vm.subports()
        await d.stop(container)
        await d.remove_network(net)
        await eventually(lambda: vm.subports() == {}, "every subport removed")
        assert vm.vlan_devices() == set()


async def test_subports_are_added_ahead_one_at_a_time(tmp_path: Path) -> None:
    """Neutron runs one trunk's add_subports one after the other: plugs ahead side by side
    only queued there, behind which a claimed port's CreateEndpoint ran out of time (live,
    a dual-stack network in the vlan VM). So a vlan binder plugs ahead one port at a time
    (Binder.plugs_ahead_at_once), and a container's own plug is not held behind them."""
    vm = NestedVm()
    pools = PoolConfig(min=4, max=4, batch=4, initial=4)
    async with daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d:
        gate = vm.neutron.faults.hold("PUT", "trunks")
        net = await d.kuryr_network()
        await eventually(lambda: vm.neutron.calls[("PUT", "trunks")] >= 1, "a subport added")
        for _ in range(50):
            await asyncio.sleep(0.001)
        assert vm.neutron.calls[("PUT", "trunks")] == 1, "plugs ahead ran side by side"
        gate.set()
        await eventually(lambda: len(vm.subports()) == 4, "four pool ports plugged ahead")
        await d.remove_network(net)
        await eventually(lambda: vm.subports() == {}, "every subport removed")


async def test_a_macvlan_network_removal_returns_with_no_pair_left(tmp_path: Path) -> None:
    """Pool ports are plugged ahead (a pair each on the VM's port); their VIFs go after their
    delete, in the background, and the network's removal waits for that: when Docker's
    ``network rm`` returns, the VM's port has no pair of them left."""
    vm = NestedVm(macvlan=True)
    pools = PoolConfig(min=3, max=4, batch=3)
    async with daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d:
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.pairs()) == 3, "three pool ports plugged ahead")
        container = await d.run(net)
        await d.stop(container)
        vm.neutron.faults.slow(0.2, "PUT", "ports")  # Neutron's pair writes under load

        await d.remove_network(net)

        assert vm.pairs() == set()
        assert vm.macvlan_devices() == set()
        assert d.ports(net) == []


@dataclass
class TwoPlugged:
    """A macvlan VM's daemon whose pool holds two ports plugged ahead: the one the test takes
    away behind the daemon and the one kept."""

    vm: NestedVm
    reconciler: Reconciler
    gone: dict[str, Any]
    kept: dict[str, Any]

    def kept_pair(self) -> tuple[str, str]:
        return self.kept["fixed_ips"][0]["ip_address"], device_mac(self.kept["mac_address"])


@asynccontextmanager
async def two_plugged_ahead(tmp_path: Path) -> AsyncIterator[TwoPlugged]:
    vm = NestedVm(macvlan=True)
    pools = PoolConfig(min=2, max=2, batch=2)
    async with (
        serving(tmp_path / "docker.sock") as dockerd,
        daemon(tmp_path, pools, neutron=vm.neutron, binders=vm.binders) as d,
    ):
        net = await d.kuryr_network()
        await eventually(lambda: len(vm.pairs()) == 2, "two pool ports plugged ahead")
        gone, kept = d.ports(net)
        yield TwoPlugged(vm, Reconciler(vm.neutron, vm.binders, dockerd.socket, 0.0), gone, kept)


async def test_a_macvlan_vif_of_a_port_deleted_behind_the_daemon_is_reconciled(
    tmp_path: Path,
) -> None:
    """The daemon killed between a port's delete and its VIF's unplug (which comes after the
    delete): the macvlan device and its pair on the VM's port outlive the port. A
    reconciliation pass finds the VIF by the port named in its alias and removes both; the
    VIFs of live ports stay."""
    async with two_plugged_ahead(tmp_path) as t:
        t.vm.neutron.store.tables["ports"].pop(t.gone["id"])  # a journal the kill cut short

        plan = await t.reconciler.plan()
        errors = await t.reconciler.apply(plan)

        assert [(a.kind, a.ident) for a in plan.actions] == [
            ("nested-vif", f"t_c{t.gone['id'][:11]}")
        ]
        assert errors == []
        assert t.vm.pairs() == {t.kept_pair()}
        assert t.vm.macvlan_devices() == {f"t_c{t.kept['id'][:11]}"}


async def test_a_pair_a_late_write_put_back_after_its_port_went_is_reconciled(
    tmp_path: Path,
) -> None:
    """Neutron applied a write of the VM port's pairs after a later one (a killed daemon's PUT
    still in its hands, or the loser of two writes of one revision; seen in CI after SIGKILL
    rounds): the pair of a deleted port is back, and no device names it. A reconciliation pass
    finds it in the record of the pairs this host wrote and takes it off; the live port's pair
    and a pair the operator added stay."""
    async with two_plugged_ahead(tmp_path) as t:
        vm, gone = t.vm, t.gone
        earlier = (vm.neutron.get("ports", vm.vm_port["id"]) or {})["allowed_address_pairs"]
        await vm.binders.for_vif_type("ovs").remove(f"t_c{gone['id'][:11]}")
        vm.neutron.store.tables["ports"].pop(gone["id"])
        vrrp = {"ip_address": "10.151.0.200", "mac_address": "00:00:5e:00:01:01"}
        late = {"allowed_address_pairs": [*earlier, vrrp]}
        await vm.neutron.update("ports", vm.vm_port["id"], late)

        plan = await t.reconciler.plan()
        errors = await t.reconciler.apply(plan)

        trace = f"{gone['fixed_ips'][0]['ip_address']} {device_mac(gone['mac_address'])}"
        assert [(a.kind, a.ident) for a in plan.actions] == [("vm-port-pair", trace)]
        assert errors == []
        assert vm.pairs() == {t.kept_pair(), (vrrp["ip_address"], vrrp["mac_address"])}


async def test_a_subport_not_plugged_ahead_by_this_daemon_leaves_the_trunk_when_deleted() -> None:
    """A port plugged by the daemon before a restart (or taken when it was killed) is not
    one this daemon plugged ahead, yet still a subport: when the pools delete it, its VIF goes
    by name, so Neutron takes its delete (it refuses a subport's: PortInUseAsSubPort)."""
    vm = NestedVm()
    net = vm.neutron.make("networks", {"name": "wt15-net"})
    vm.neutron.make("subnets", {"network_id": net["id"], "cidr": "10.152.0.0/24", "ip_version": 4})
    raw = vm.neutron.make("ports", {"network_id": net["id"], "device_owner": naming.DEVICE_OWNER})
    vif = Port.from_neutron(raw).vif("", 1442)
    await vm.binder.plug(vif, 5)  # the daemon's life before the restart
    assert vif.port_id in vm.subports()

    async def deleted(_: str) -> None:
        return None

    prewire = Prewire(vm.binders, lambda _: 1442, 5.0, deleted=deleted)
    prewire.gone(vif.port_id)

    await eventually(lambda: vm.subports() == {}, "the subport removed")
    assert vm.vlan_devices() == set()
    await vm.neutron.delete("ports", vif.port_id)
    await prewire.close()


async def test_a_macvlan_not_plugged_ahead_by_this_daemon_goes_with_its_pair_when_deleted() -> None:
    """The same in macvlan mode: a port plugged before a restart has a device and a pair on
    the VM's port, which go when the pools delete the port, and the network's removal waits
    for them (seen live: pairs of deleted ports left on the VM port after SIGKILL rounds)."""
    vm = NestedVm(macvlan=True)
    net = vm.neutron.make("networks", {"name": "wt15-net"})
    vm.neutron.make("subnets", {"network_id": net["id"], "cidr": "10.154.0.0/24", "ip_version": 4})
    raw = vm.neutron.make("ports", {"network_id": net["id"], "device_owner": naming.DEVICE_OWNER})
    vif = Port.from_neutron(raw).vif("", 1442)
    await vm.binders.for_vif_type("ovs").plug(vif, 5)  # the daemon's life before the restart
    assert len(vm.pairs()) == 1 and len(vm.macvlan_devices()) == 1

    async def deleted(_: str) -> None:
        return None

    prewire = Prewire(vm.binders, lambda _: 1442, 5.0, deleted=deleted)
    prewire.gone(vif.port_id, net["id"])
    await prewire.unplugged(net["id"])

    assert vm.pairs() == set()
    assert vm.macvlan_devices() == set()
    await prewire.close()


async def test_a_replayed_delete_of_a_subport_unplugs_it_first(tmp_path: Path) -> None:
    """A delete journaled before a kill is replayed after it, with no VIF of this daemon's
    to unplug: Neutron refuses it (409 PortInUseAsSubPort) until the port leaves the trunk,
    so the journal has the port's VIF removed (found by Binder.plugged) and deletes it."""
    vm = NestedVm()
    net = vm.neutron.make("networks", {"name": "wt15-net"})
    vm.neutron.make("subnets", {"network_id": net["id"], "cidr": "10.153.0.0/24", "ip_version": 4})
    raw = vm.neutron.make("ports", {"network_id": net["id"], "device_owner": naming.DEVICE_OWNER})
    vif = Port.from_neutron(raw).vif("", 1442)
    await vm.binder.plug(vif, 5)  # the daemon's life before the restart

    async def deleted(_: str) -> None:
        return None

    prewire = Prewire(vm.binders, lambda _: 1442, 5.0, deleted=deleted)
    journal = Journal(State.open(tmp_path), vm.neutron, quiet=Quiet(0.0, 0.0))
    journal.unplug_first = prewire.unplug_by_id
    journal.start()
    try:
        journal.record_delete(vif.port_id)
        await eventually(lambda: vm.neutron.get("ports", vif.port_id) is None, "port deleted")
    finally:
        await journal.stop()
    assert vm.subports() == {}
    assert vm.vlan_devices() == set()
