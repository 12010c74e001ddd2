"""Containers inside VMs (issue 15): the seed scenario in each nested mode, in the simulated
VMs of ``kuryr stack up --vms 2``: vm1 runs Kuryr in ``macvlan`` mode, vm2 in ``vlan`` mode
(trunk subports; this kernel has no 802.1Q, so through the VM's own OVS bridge).

Per mode, one Docker network in the VM and one on the machine's host map onto one Neutron
network (``-o neutron.net.name``): the VMs' own network in macvlan mode (a container's
address must be one of the VM port's), a network of the test's in vlan mode (a subport may
be on any network). Two servers run in the VM and one on the host; the tests of a mode share
them, and the last one removes the VM's network and checks what it left behind."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.binding.macvlan import device_mac
from kuryr.stack import vmplan
from tests.conftest import StackFacts
from tests.e2e.helpers import DockerEnv, Neutron, settle, side_by_side, wait_for
from tests.e2e.multihost import (
    Container,
    Host,
    HostsEnv,
    delete_kuryr_pool,
    delete_network,
    random_v4,
)
from tests.e2e.nested import NestedVm
from tests.e2e.netns_client import NetnsClient, plug_client

pytestmark = pytest.mark.stack

PAGE = "kuryr-nested"
WEB = ("sh", "-c", f"mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www")


@dataclass
class Scene:
    vm: NestedVm
    main: Host
    env: HostsEnv
    network: dict[str, Any]
    docker_name: str
    in_vm: list[Container]
    on_host: Container
    # The VM port before the test made anything: its trunk's subports, its address pairs.
    subports_before: dict[str, int]
    pairs_before: set[tuple[str, str]]

    def address(self, container: Container) -> str:
        return container.address(self.docker_name, 4)


def _network(mode: str, env: HostsEnv, neutron: Neutron) -> tuple[dict[str, Any], str]:
    """The Neutron network the mode's containers join, and its subnet's CIDR."""
    if mode == vmplan.MACVLAN:
        (network,) = neutron.find("networks", name=vmplan.NETWORK)
        return network, vmplan.SUBNET_CIDR
    network = neutron.create("networks", name=env.name("net"))
    env.defer(lambda: delete_network(neutron, network["id"]))
    cidr = random_v4("10.66")
    neutron.create(
        "subnets", name=env.name("subnet"), network_id=network["id"], ip_version=4, cidr=cidr
    )
    return network, cidr


@pytest.fixture(scope="module", params=vmplan.MODES)
def scene(
    request: pytest.FixtureRequest,
    sim_vms: list[NestedVm],
    main_host: Host,
    neutron: Neutron,
) -> Iterator[Scene]:
    vm = next(v for v in sim_vms if v.mode == request.param)
    env = HostsEnv()
    try:
        before = (vm.subports(neutron), vm.pairs(neutron))
        network, cidr = _network(vm.mode, env, neutron)
        env.defer(lambda: delete_kuryr_pool(neutron, cidr))
        name = env.name("docker-net")
        for host in (vm.host, main_host):
            env.network(host, name, "--subnet", cidr, "-o", f"neutron.net.name={network['name']}")
        in_vm = [env.container(vm.host, name, cmd=WEB) for _ in range(2)]
        on_host = env.container(main_host, name, cmd=WEB)
        yield Scene(vm, main_host, env, network, name, in_vm, on_host, *before)
    finally:
        env.close()


def test_vm_containers_have_their_ports_addresses_and_macs(scene: Scene, neutron: Neutron) -> None:
    for container in scene.in_vm:
        attached = container.attachment(scene.docker_name)
        port = neutron.port_of_endpoint(attached["EndpointID"])
        assert port["network_id"] == scene.network["id"]
        assert [f["ip_address"] for f in port["fixed_ips"]] == [attached["IPAddress"]]
        seen = container.exec("cat", "/sys/class/net/eth0/address")
        if scene.vm.mode == vmplan.VLAN:
            assert seen.lower() == port["mac_address"].lower()
            assert port["id"] in scene.vm.subports(neutron), "the port is no subport of the VM's"
        else:
            # A macvlan device carries a MAC derived from its port's, and so does its pair
            # on the VM port: only the VM port then claims it in OVN's L2 lookup (e1eea71).
            mac = device_mac(port["mac_address"])
            assert mac != port["mac_address"].lower()
            assert seen.lower() == mac
            pair = (attached["IPAddress"], mac)
            assert pair in scene.vm.pairs(neutron), "the VM port does not allow the address"


def test_two_containers_in_a_vm_ping_each_other(scene: Scene) -> None:
    first, second = scene.in_vm
    there, back = side_by_side(
        lambda: first.pings(scene.address(second)), lambda: second.pings(scene.address(first))
    )
    assert there
    assert back


def test_a_vm_container_and_a_host_container_ping_each_other(scene: Scene) -> None:
    in_vm = scene.in_vm[0]
    there, back = side_by_side(
        lambda: in_vm.pings(scene.address(scene.on_host)),
        lambda: scene.on_host.pings(scene.address(in_vm)),
    )
    assert there, "VM container -> host container"
    assert back, "host container -> VM container"


def test_an_exposed_port_as_the_mode_filters_it(
    scene: Scene, neutron: Neutron, stack: StackFacts
) -> None:
    """vlan: a container's subport carries its own groups, so ``--expose`` opens its port
    and only its. macvlan: the VM port's groups filter every container of the VM (README:
    Nested mode), so Kuryr makes no group and the VM port's groups decide."""
    if scene.vm.mode == vmplan.VLAN:
        _reachable_only_while_exposed(scene, neutron)
    else:
        _reachable_as_the_vm_ports_groups_allow(scene, neutron, stack)


def _reachable_only_while_exposed(scene: Scene, neutron: Neutron) -> None:
    """A client outside the containers' groups (tests.e2e.netns_client) reaches port 80 of
    a VM container exposed with ``--expose 80``, not that of one that is not exposed; the
    exposure's groups go with the exposed container."""
    exposed = scene.env.container(scene.vm.host, scene.docker_name, "--expose", "80", cmd=WEB)
    hidden = scene.in_vm[0]
    client_env = DockerEnv()
    try:
        client = plug_client(client_env, neutron, scene.network)
        address = scene.address(exposed)
        wait_for(lambda: client.fetch(address) == PAGE, f"{client.address} -> {address}:80")
        assert client.fetch(scene.address(hidden)) is None, "reached a container not exposed"

        def groups(container: Container) -> set[str]:
            port = neutron.port_of_endpoint(container.endpoint_id(scene.docker_name))
            return set(port["security_groups"])

        exposure = groups(exposed) - groups(hidden)
        assert exposure, "the exposed container's port has no group beyond the defaults"
        scene.env.remove_container(exposed)
        for group in exposure:
            neutron.wait_gone("security-groups", group)
    finally:
        client_env.close()
        if exposed in scene.env.containers:
            # Not left for the scene's end: the mode's last test removes the network.
            scene.env.remove_container(exposed)


def _groups(scene: Scene, neutron: Neutron, container: Container) -> set[str]:
    port = neutron.port_of_endpoint(container.endpoint_id(scene.docker_name))
    return set(port["security_groups"])


def _serves_page(client: NetnsClient, address: str) -> bool:
    return client.fetch(address) == PAGE


def _opens_tcp_80_to_anyone(neutron: Neutron, group_id: str) -> bool:
    """The group has an IPv4 ingress rule letting tcp 80 in from outside its members."""
    group = neutron.show("security-groups", group_id)
    assert group is not None
    return any(
        r["direction"] == "ingress"
        and r["ethertype"] == "IPv4"
        and r["protocol"] in (None, "tcp", "6")
        and (r["port_range_min"] or 0) <= 80 <= (r["port_range_max"] or 65535)
        and r["remote_group_id"] is None
        for r in group["security_group_rules"]
    )


def _reachable_as_the_vm_ports_groups_allow(
    scene: Scene, neutron: Neutron, stack: StackFacts
) -> None:
    """``--expose 80`` is accepted and makes no group (one on the container's unbound port
    would filter nothing), the daemon warns once naming the VM's port, and the client
    reaches port 80 of the VM's containers exactly when the VM port's groups let it in."""
    exposed = scene.env.container(scene.vm.host, scene.docker_name, "--expose", "80", cmd=WEB)
    hidden = scene.in_vm[0]
    endpoint_id = exposed.endpoint_id(scene.docker_name)
    assert _groups(scene, neutron, exposed) == _groups(scene, neutron, hidden)
    name = naming.expose_sg_name(endpoint_id)
    assert neutron.find("security-groups", name=name) == [], f"{name} exists"
    log = vmplan.vm(stack.layout.root, scene.vm.host.name, scene.vm.mode).log("kuryr")
    warned = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if f"endpoint {endpoint_id[:12]}: exposed ports 80/tcp" in line
    ]
    assert len(warned) == 1, f"{log}: {warned}"
    assert "WARNING" in warned[0] and scene.vm.port_id in warned[0]

    vm_port = neutron.show("ports", scene.vm.port_id)
    assert vm_port is not None
    vm_groups = list(vm_port["security_groups"])
    assert not any(_opens_tcp_80_to_anyone(neutron, g) for g in vm_groups)
    client_env = DockerEnv()
    try:
        client = plug_client(client_env, neutron, scene.network)
        # Side by side: a refused fetch lasts its whole timeout.
        both = (exposed, hidden)
        with ThreadPoolExecutor(max_workers=len(both)) as pool:
            reached = dict(zip(both, pool.map(client.fetch, map(scene.address, both)), strict=True))
        for container, page in reached.items():
            assert page is None, f"reached {container.name} through the VM port's groups"

        web = neutron.create("security-groups", name=scene.env.name("vm-web"))
        client_env.defer(lambda: neutron.delete("security-groups", web["id"]))
        neutron.create(
            "security-group-rules",
            security_group_id=web["id"],
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
        )
        neutron.update("ports", scene.vm.port_id, security_groups=[*vm_groups, web["id"]])
        try:
            for container in (exposed, hidden):
                address = scene.address(container)
                wait_for(
                    functools.partial(_serves_page, client, address),
                    f"{client.address} -> {address}:80 through the VM port's groups",
                )
        finally:
            neutron.update("ports", scene.vm.port_id, security_groups=vm_groups)
    finally:
        client_env.close()
        # Not left for the scene's end: the mode's last test removes the network.
        scene.env.remove_container(exposed)


def test_network_rm_in_the_vm_leaves_no_subport_and_no_trunk_change(
    scene: Scene, neutron: Neutron
) -> None:
    """Last of its mode: the VM's containers and its Docker network go; the VM's daemon
    gives back every port it held on the network (pool ports too), and the VM's port is as
    it was before the mode's first test: same subports, same address pairs."""
    ports_in_vm = {
        neutron.port_of_endpoint(c.endpoint_id(scene.docker_name))["id"] for c in scene.in_vm
    }
    for container in list(scene.in_vm):
        scene.env.remove_container(container)
    scene.env.remove_network(scene.vm.host, scene.docker_name)

    marker = naming.host_description(naming.vm_host(scene.vm.port_id))

    def vm_ports_left() -> list[str]:
        return [
            p["id"]
            for p in neutron.find("ports", network_id=scene.network["id"])
            if p["id"] in ports_in_vm or p["description"] == marker
        ]

    left: list[str] = []
    assert settle(vm_ports_left, left) == left, "the VM's ports outlived its network"
    assert scene.vm.subports(neutron) == scene.subports_before
    # A macvlan VIF goes once its port's delete is in Neutron (kuryr.domain.ports.prewire),
    # in the network's background removal: its pair may still be on its way out.
    pairs = settle(lambda: scene.vm.pairs(neutron), scene.pairs_before)
    assert pairs == scene.pairs_before
