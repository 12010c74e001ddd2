"""LinuxBridgeBinder against real Linux bridges, all inside throwaway namespaces.

No ML2/linuxbridge agent runs here, so these tests check the mechanics the agent relies on:
the network's ``brq`` bridge exists (created when missing), the host end is enslaved to it,
traffic crosses it, and unplug removes the veth but leaves the bridge.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from kuryr.backends.binding.base import Vif
from kuryr.backends.binding.linuxbridge import LinuxBridgeBinder, bridge_name
from kuryr.backends.netlink import Netlink
from tests.netns import Namespaces, configure, link_names, move_link, namespaces_fixture, ping

namespaces = namespaces_fixture("bnd-")


def random_vif(network_id: str) -> Vif:
    mac = "fa:16:3e:" + ":".join(secrets.token_hex(1) for _ in range(3))
    return Vif(
        port_id=str(uuid.uuid4()),
        endpoint_id=secrets.token_hex(32),
        network_id=network_id,
        mac_address=mac,
        mtu=1450,
        vif_type="bridge",
    )


@pytest.fixture
async def host(namespaces: Namespaces) -> AsyncIterator[tuple[str, Netlink]]:
    """A namespace standing in for the host, with the binder's netlink inside it."""
    name = namespaces.new()
    netlink = Netlink(netns=name)
    try:
        yield name, netlink
    finally:
        await netlink.close()


async def test_plug_creates_the_bridge_and_enslaves_both_ends(
    host: tuple[str, Netlink], namespaces: Namespaces
) -> None:
    host_ns, netlink = host
    binder = LinuxBridgeBinder(netlink)
    network_id = str(uuid.uuid4())
    vifs = [random_vif(network_id), random_vif(network_id)]
    for vif in vifs:
        await binder.plug(vif, 1.0)

    bridge = await netlink.link(bridge_name(network_id))
    assert bridge is not None and bridge.up
    for vif in vifs:
        tap = await netlink.link(vif.host_ifname)
        container = await netlink.link(vif.container_ifname)
        assert tap is not None and container is not None
        assert (tap.master, tap.up, tap.mtu) == (bridge.index, True, 1450)
        assert (container.mac, container.mtu) == (vif.mac_address, 1450)
    assert await binder.plugged() == {v.port_id: v.host_ifname for v in vifs}

    sandboxes = [namespaces.new(), namespaces.new()]
    prefix = f"10.251.{secrets.randbelow(250)}"
    for n, (vif, sandbox) in enumerate(zip(vifs, sandboxes, strict=True), start=1):
        await move_link(vif.container_ifname, sandbox, source=host_ns)
        await configure(sandbox, vif.container_ifname, f"{prefix}.{n}", 24)
    result = ping(sandboxes[0], f"{prefix}.2")
    assert result.returncode == 0, result.stdout + result.stderr

    await binder.unplug(vifs[0])
    await binder.unplug(vifs[0])
    names = await link_names(host_ns)
    assert vifs[0].host_ifname not in names
    assert {vifs[1].host_ifname, bridge_name(network_id)} <= names
    assert vifs[0].container_ifname not in await link_names(sandboxes[0])
    assert await binder.plugged() == {vifs[1].port_id: vifs[1].host_ifname}


async def test_plug_uses_an_existing_bridge(host: tuple[str, Netlink]) -> None:
    _, netlink = host
    network_id = str(uuid.uuid4())
    existing = await netlink.ensure_bridge(bridge_name(network_id))
    vif = random_vif(network_id)
    await LinuxBridgeBinder(netlink).plug(vif, 1.0)
    tap = await netlink.link(vif.host_ifname)
    assert tap is not None and tap.master == existing
    assert await netlink.ensure_bridge(bridge_name(network_id)) == existing


async def test_replug_replaces_the_veth(host: tuple[str, Netlink]) -> None:
    _, netlink = host
    binder = LinuxBridgeBinder(netlink)
    vif = random_vif(str(uuid.uuid4()))
    await binder.plug(vif, 1.0)
    first = await netlink.link(vif.host_ifname)
    await binder.plug(vif, 1.0)
    second = await netlink.link(vif.host_ifname)
    assert first is not None and second is not None
    assert first.index != second.index
    assert second.master is not None
