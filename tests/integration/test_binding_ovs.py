"""OvsBinder against the real stack: Neutron ports, OVS br-int, ovn-controller.

Each test makes its own Neutron network (``bnd-...``), plugs veths for ports bound to this
chassis, plays the container in throwaway namespaces and checks what OVS, OVN and Neutron
see. Plug latencies (veth create -> ovn-installed) are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyroute2 import AsyncIPRoute

from kuryr.backends import ethtool
from kuryr.backends.binding.base import Vif
from kuryr.backends.binding.ovs import OVN_INSTALLED, OWNER_KEY, OvsBinder
from kuryr.backends.binding.registry import Binders, load
from kuryr.config import BindingConfig
from kuryr.errors import BackendError
from tests.integration.host_binders import host_binders_fixture
from tests.netns import (
    Namespaces,
    configure,
    move_home,
    move_link,
    namespaces_fixture,
    ping,
)

pytestmark = pytest.mark.stack
host_binders = host_binders_fixture()

namespaces = namespaces_fixture("bnd-")
READY_TIMEOUT = 10.0


class NeutronHttp:
    """Just enough of Neutron's REST API for these tests (noauth)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/v2.0/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def delete(self, path: str) -> None:
        try:
            self.call("DELETE", path)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise


@dataclass(frozen=True)
class Port:
    id: str
    mac: str
    ip: str
    prefixlen: int
    network_id: str


@dataclass
class Network:
    neutron: NeutronHttp
    host: str
    id: str
    subnet_id: str
    prefixlen: int
    mtu: int
    ports: list[str]

    def port(self) -> Port:
        body = {
            "port": {
                "network_id": self.id,
                "name": f"bnd-{secrets.token_hex(4)}",
                "device_owner": "compute:bnd",
                "binding:host_id": self.host,
            }
        }
        port = self.neutron.call("POST", "ports", body)["port"]
        self.ports.append(port["id"])
        ip = port["fixed_ips"][0]["ip_address"]
        return Port(port["id"], port["mac_address"], ip, self.prefixlen, self.id)

    def status(self, port_id: str) -> str:
        return str(self.neutron.call("GET", f"ports/{port_id}")["port"]["status"])


def vif_for(port: Port, mtu: int) -> Vif:
    return Vif(
        port_id=port.id,
        endpoint_id=secrets.token_hex(32),
        network_id=port.network_id,
        mac_address=port.mac,
        mtu=mtu,
    )


@pytest.fixture
def network(stack: Any) -> Iterator[Network]:
    neutron = NeutronHttp(stack.neutron_url)
    net = neutron.call("POST", "networks", {"network": {"name": f"bnd-{secrets.token_hex(4)}"}})
    net = net["network"]
    cidr = f"10.250.{secrets.randbelow(250)}.0/24"
    subnet = neutron.call(
        "POST",
        "subnets",
        {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": cidr, "name": "bnd-sub"}},
    )["subnet"]
    made = Network(neutron, stack.chassis_hostname, net["id"], subnet["id"], 24, net["mtu"], [])
    try:
        yield made
    finally:
        for port_id in made.ports:
            neutron.delete(f"ports/{port_id}")
        neutron.delete(f"networks/{net['id']}")


async def assert_gone(host_binders: Binders, vif: Vif) -> None:
    assert host_binders.ovsdb is not None
    assert await host_binders.ovsdb.interface(vif.host_ifname) is None
    assert await host_binders.netlink.index(vif.host_ifname) is None
    assert await host_binders.netlink.index(vif.container_ifname) is None
    assert vif.port_id not in await host_binders.for_vif_type("ovs").plugged()


async def wait_active(network: Network, port_id: str, within: float = 30.0) -> str:
    """Neutron's status is slow and variable; poll it only as the end state to check."""
    deadline = time.monotonic() + within
    status = network.status(port_id)
    while status != "ACTIVE" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = network.status(port_id)
    return status


def interface_uuid(name: str) -> str:
    done = subprocess.run(
        ["ovs-vsctl", "get", "Interface", name, "_uuid"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


async def addresses(ifname: str) -> list[str]:
    ipr = AsyncIPRoute()
    try:
        index = (await ipr.link_lookup(ifname=ifname))[0]
        return [str(a.get("address")) async for a in await ipr.addr("dump", index=index)]
    finally:
        ipr.close()


async def set_link(ifname: str, **change: Any) -> None:
    ipr = AsyncIPRoute()
    try:
        await ipr.link("set", ifname=ifname, **change)
    finally:
        ipr.close()


async def timed_plug(binder: Any, vif: Vif) -> float:
    start = time.perf_counter()
    await binder.plug(vif, READY_TIMEOUT)
    return (time.perf_counter() - start) * 1000


def test_registry_serves_ovs_with_the_chassis_name(host_binders: Binders, stack: Any) -> None:
    assert host_binders.host == stack.chassis_hostname
    assert isinstance(host_binders.for_vif_type("ovs"), OvsBinder)


async def test_two_ports_ping_through_ovn(
    host_binders: Binders, network: Network, namespaces: Namespaces
) -> None:
    binder = host_binders.for_vif_type("ovs")
    ports = [network.port(), network.port()]
    vifs = [vif_for(port, network.mtu) for port in ports]
    sandboxes = [namespaces.new(), namespaces.new()]
    latencies = [await timed_plug(binder, vif) for vif in vifs]
    print(f"\nplug latency (veth -> ovn-installed), sequential: {latencies} ms")

    assert host_binders.ovsdb is not None
    for vif, port in zip(vifs, ports, strict=True):
        state = await host_binders.ovsdb.interface(vif.host_ifname)
        assert state is not None
        assert state.external_ids[OVN_INSTALLED] == "true"
        assert state.external_ids["iface-id"] == port.id
        assert state.external_ids["attached-mac"] == port.mac
        assert state.external_ids["iface-status"] == "active"
        assert state.external_ids["vm-uuid"] == vif.endpoint_id
        assert state.external_ids[OWNER_KEY] == vif.endpoint_id
    plugged = await binder.plugged()
    assert {plugged[v.port_id] for v in vifs} == {v.host_ifname for v in vifs}

    for vif, port, sandbox in zip(vifs, ports, sandboxes, strict=True):
        await move_link(vif.container_ifname, sandbox)
        await configure(sandbox, vif.container_ifname, port.ip, port.prefixlen)
    result = ping(sandboxes[0], ports[1].ip)
    assert result.returncode == 0, result.stdout + result.stderr
    result = ping(sandboxes[1], ports[0].ip)
    assert result.returncode == 0, result.stdout + result.stderr
    for port in ports:
        assert await wait_active(network, port.id) == "ACTIVE"

    for vif in vifs:
        await binder.unplug(vif)
    for vif in vifs:
        await assert_gone(host_binders, vif)


async def test_a_vif_back_from_its_sandbox_serves_the_next_one(
    host_binders: Binders, network: Network, namespaces: Namespaces
) -> None:
    """The container end comes back emptied by the move (no address, down), the backend
    never saw it go: ``ready`` holds and the next sandbox reaches its peer at once."""
    binder = host_binders.for_vif_type("ovs")
    ports = [network.port(), network.port()]
    vifs = [vif_for(port, network.mtu) for port in ports]
    for vif in vifs:
        await binder.plug(vif, READY_TIMEOUT)
    row = interface_uuid(vifs[0].host_ifname)
    peer = namespaces.new()
    await move_link(vifs[1].container_ifname, peer)
    await configure(peer, vifs[1].container_ifname, ports[1].ip, ports[1].prefixlen)

    for _ in range(2):
        sandbox = namespaces.new()
        await move_link(vifs[0].container_ifname, sandbox)
        assert not await binder.ready(vifs[0]), "ready while the container end is away"
        await configure(sandbox, vifs[0].container_ifname, ports[0].ip, ports[0].prefixlen)
        result = ping(sandbox, ports[1].ip)
        assert result.returncode == 0, result.stdout + result.stderr
        # With carrier, the host end would have had its IPv6 link-local address by now.
        assert await addresses(vifs[0].host_ifname) == [], "the host end has an address"
        await move_home(vifs[0].container_ifname, sandbox)
        assert await binder.ready(vifs[0]), "the VIF back from its sandbox is not ready"
        assert await addresses(vifs[0].container_ifname) == [], "an address survived the move"
        assert interface_uuid(vifs[0].host_ifname) == row, "the backend saw the VIF go"

    for vif in vifs:
        await binder.unplug(vif)
        await assert_gone(host_binders, vif)


TAMPERING = {
    "promisc": {"flags": 0x100, "change": 0x100},
    "allmulti": {"flags": 0x200, "change": 0x200},
    "alias": {"ifalias": "left by a container"},
    "up": {"state": "up"},
    "mac": {"address": "fa:16:3e:12:34:56"},
    "mtu": {"mtu": 1300},
}


@pytest.mark.parametrize("change", TAMPERING.values(), ids=TAMPERING.keys())
async def test_a_container_end_changed_by_its_container_is_not_ready(
    host_binders: Binders, network: Network, change: dict[str, Any]
) -> None:
    """What a container with NET_ADMIN could change and a move back keeps: the VIF is then
    plugged afresh for the next container (kuryr.domain.ports.prewire)."""
    binder = host_binders.for_vif_type("ovs")
    vif = vif_for(network.port(), network.mtu)
    await binder.plug(vif, READY_TIMEOUT)
    try:
        assert await binder.ready(vif)
        await set_link(vif.container_ifname, **change)
        assert not await binder.ready(vif)
    finally:
        await binder.unplug(vif)


async def test_unplug_after_the_sandbox_died(
    host_binders: Binders, network: Network, namespaces: Namespaces
) -> None:
    binder = host_binders.for_vif_type("ovs")
    vif = vif_for(network.port(), network.mtu)
    await binder.plug(vif, READY_TIMEOUT)
    await move_link(vif.container_ifname, namespaces.new())
    namespaces.remove_all()
    await binder.unplug(vif)
    await binder.unplug(vif)
    await assert_gone(host_binders, vif)


async def test_container_end_has_the_port_mac_and_mtu(
    host_binders: Binders, network: Network
) -> None:
    binder = host_binders.for_vif_type("ovs")
    port = network.port()
    vif = vif_for(port, 1400)
    await binder.plug(vif, READY_TIMEOUT)
    try:
        container = await host_binders.netlink.link(vif.container_ifname)
        host = await host_binders.netlink.link(vif.host_ifname)
        assert container is not None and host is not None
        assert (container.mac, container.mtu, container.up) == (port.mac, 1400, False)
        assert (host.mtu, host.up) == (1400, True)
    finally:
        await binder.unplug(vif)


async def test_replug_gives_a_freshly_wired_port(host_binders: Binders, network: Network) -> None:
    binder = host_binders.for_vif_type("ovs")
    vif = vif_for(network.port(), network.mtu)
    await binder.plug(vif, READY_TIMEOUT)
    await binder.plug(vif, READY_TIMEOUT)
    assert host_binders.ovsdb is not None
    state = await host_binders.ovsdb.interface(vif.host_ifname)
    assert state is not None and state.external_ids[OVN_INSTALLED] == "true"
    await binder.unplug(vif)
    await assert_gone(host_binders, vif)


async def test_port_unknown_to_ovn_times_out_and_leaves_nothing(
    host_binders: Binders, network: Network
) -> None:
    binder = host_binders.for_vif_type("ovs")
    vif = Vif(
        port_id=str(uuid.uuid4()),
        endpoint_id=secrets.token_hex(32),
        network_id=network.id,
        mac_address="fa:16:3e:00:00:01",
        mtu=network.mtu,
    )
    with pytest.raises(BackendError, match=rf"port {vif.port_id} not wired by OVN within 1s"):
        await binder.plug(vif, 1.0)
    await assert_gone(host_binders, vif)


async def test_ten_concurrent_plugs(host_binders: Binders, network: Network) -> None:
    binder = host_binders.for_vif_type("ovs")
    vifs = [vif_for(network.port(), network.mtu) for _ in range(10)]
    start = time.perf_counter()
    latencies = await asyncio.gather(*(timed_plug(binder, vif) for vif in vifs))
    wall = (time.perf_counter() - start) * 1000
    print(
        f"\n10 concurrent plugs: wall {wall:.1f} ms, per plug median "
        f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
    )
    plugged = await binder.plugged()
    assert all(plugged.get(v.port_id) == v.host_ifname for v in vifs)
    await asyncio.gather(*(binder.unplug(vif) for vif in vifs))
    for vif in vifs:
        await assert_gone(host_binders, vif)


async def test_unplug_of_a_never_plugged_vif_is_a_no_op(host_binders: Binders) -> None:
    vif = Vif(
        str(uuid.uuid4()), secrets.token_hex(32), str(uuid.uuid4()), "fa:16:3e:00:00:02", 1500
    )
    await host_binders.for_vif_type("ovs").unplug(vif)
    await assert_gone(host_binders, vif)


async def test_tx_checksum_offload_off_is_set_on_the_container_end_and_checked(
    stack: Any, network: Network
) -> None:
    """``[binding] tx_checksum_offload = false``: the container end leaves plug with TX
    checksum offload off; one that has it on again is not ready (it is plugged afresh)."""
    loaded = await load(BindingConfig(tx_checksum_offload=False))
    try:
        binder = loaded.for_vif_type("ovs")
        vif = vif_for(network.port(), network.mtu)
        await binder.plug(vif, READY_TIMEOUT)
        try:
            assert not ethtool.tx_checksum(vif.container_ifname)
            assert ethtool.tx_checksum(vif.host_ifname), "the host end was changed too"
            assert await binder.ready(vif)
            ethtool.set_tx_checksum(vif.container_ifname, True)
            assert not await binder.ready(vif)
        finally:
            await binder.unplug(vif)
    finally:
        await loaded.close()


async def test_tx_checksum_offload_stays_on_by_default(
    host_binders: Binders, network: Network
) -> None:
    binder = host_binders.for_vif_type("ovs")
    vif = vif_for(network.port(), network.mtu)
    await binder.plug(vif, READY_TIMEOUT)
    try:
        assert ethtool.tx_checksum(vif.container_ifname)
        assert await binder.ready(vif)
    finally:
        await binder.unplug(vif)
