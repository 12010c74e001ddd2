"""Containers on three hosts (the machine, h2 and h3 of ``kuryr stack up --hosts 3``) on
Neutron networks that span the hosts without Swarm: each host has its own Docker network,
all mapped onto one Neutron network with ``-o neutron.net.name``.

One dual-stack network with an HTTP server container on every host is shared by the tests
of this module; traffic crosses the hosts in geneve tunnels between their chassis."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.helpers import Neutron, wait_for
from tests.e2e.multihost import (
    Container,
    Host,
    HostsEnv,
    Span,
    delete_kuryr_pool,
    delete_network,
    failed_pings,
    plug_vm,
    span,
)

pytestmark = pytest.mark.stack

PAGE = "kuryr-mh"
WEB = ("sh", "-c", f"mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www")


@dataclass
class Spanned:
    span: Span
    containers: list[Container]


@pytest.fixture(scope="module")
def spanned(sim_hosts: list[Host], neutron: Neutron) -> Iterator[Spanned]:
    env = HostsEnv()
    try:
        net = span(env, neutron, sim_hosts)
        containers = [env.container(host, net.docker_name) for host in sim_hosts]
        yield Spanned(net, containers)
    finally:
        env.close()


@pytest.fixture
def mh_env() -> Iterator[HostsEnv]:
    env = HostsEnv()
    try:
        yield env
    finally:
        env.close()


def test_every_host_is_its_own_chassis(sim_hosts: list[Host]) -> None:
    assert [h.name for h in sim_hosts[1:]] == ["h2", "h3"]
    assert len({h.chassis for h in sim_hosts}) == 3
    for host in sim_hosts:
        assert host.docker("info", "-f", "{{.Name}}") == host.chassis


def test_each_container_gets_a_unique_address_on_a_port_bound_to_its_host(
    spanned: Spanned, neutron: Neutron
) -> None:
    name = spanned.span.docker_name
    seen: dict[int, set[str]] = {4: set(), 6: set()}
    for container in spanned.containers:
        port = neutron.port_of_endpoint(container.endpoint_id(name))
        assert port["network_id"] == spanned.span.network["id"]
        assert port["binding:host_id"] == container.host.chassis
        neutron.wait_active(port["id"])
        for version in (4, 6):
            address = container.address(name, version)
            assert ipaddress.ip_address(address) in ipaddress.ip_network(
                spanned.span.cidrs[version]
            )
            assert {f["ip_address"] for f in port["fixed_ips"]} >= {address}
            seen[version].add(address)
    assert [len(seen[4]), len(seen[6])] == [3, 3], seen


@pytest.mark.parametrize("version", [4, 6])
def test_containers_on_different_hosts_ping_each_other(spanned: Spanned, version: int) -> None:
    failed = failed_pings(spanned.containers, spanned.span.docker_name, version)
    assert failed == [], f"IPv{version} pings that failed: {failed}"


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_between_containers_on_different_hosts(spanned: Spanned, version: int) -> None:
    """A 1 MB download each way between every pair of hosts, checked by md5."""
    name = spanned.span.docker_name
    sums = {c.name: c.served_md5() for c in spanned.containers}
    failed = [
        f"{client.host.name}<-{server.host.name}"
        for client, server in itertools.permutations(spanned.containers, 2)
        if client.md5_from(server.address(name, version)) != sums[server.name]
    ]
    assert failed == [], f"IPv{version} downloads that failed or differ: {failed}"


def test_a_vm_like_port_reaches_containers_on_every_host(
    spanned: Spanned, sim_hosts: list[Host], neutron: Neutron, mh_env: HostsEnv
) -> None:
    """A Neutron port outside Docker, bound to the machine's chassis and plugged by hand into
    its br-int, talks to the containers on all three hosts over v4 and v6."""
    vm = plug_vm(mh_env, neutron, sim_hosts[0], spanned.span.network)
    name = spanned.span.docker_name

    def failures(container: Container) -> list[str]:
        found = []
        expected = container.served_md5()
        for version in (4, 6):
            address = container.address(name, version)
            if not vm.pings(address):
                found.append(f"VM -> {container.host.name} {address}")
            body = vm.fetch(address)
            if body is None or hashlib.md5(body).hexdigest() != expected:
                found.append(f"VM <- {container.host.name} {address} over TCP")
        if not container.pings(vm.addresses[4]):
            found.append(f"{container.host.name} -> VM")
        return found

    # One host's checks beside the others': each ping waits seconds for its replies.
    with ThreadPoolExecutor(max_workers=len(spanned.containers)) as pool:
        failed = [f for found in pool.map(failures, spanned.containers) for f in found]
    assert failed == [], f"VM traffic that failed: {failed}"


def test_a_network_the_first_host_made_spans_the_others(
    sim_hosts: list[Host], neutron: Neutron, mh_env: HostsEnv
) -> None:
    """The README's recipe: Kuryr makes the Neutron network and subnet on the first host; the
    others join them by name (``-o neutron.net.name``, ``--ipam-opt neutron.subnet.name``)."""
    first, *others = sim_hosts
    cidr = f"10.65.{secrets.randbelow(250) + 1}.0/24"
    gateway = str(ipaddress.ip_network(cidr)[1])
    docker_name = mh_env.name("made")
    common = ("--subnet", cidr, "--gateway", gateway)
    mh_env.network(first, docker_name, *common)
    docker_id = first.docker("network", "inspect", "-f", "{{.Id}}", docker_name)
    for host in others:
        mh_env.network(
            host, docker_name, *common, "--ipam-opt", f"neutron.subnet.name=kuryr-subnet-{cidr}",
            "-o", f"neutron.net.name=kuryr-net-{docker_id[:8]}",
        )  # fmt: skip
    containers = [mh_env.container(host, docker_name, cmd=WEB) for host in sim_hosts]
    ports = [neutron.port_of_endpoint(c.endpoint_id(docker_name)) for c in containers]
    assert len({p["network_id"] for p in ports}) == 1
    assert [p["binding:host_id"] for p in ports] == [h.chassis for h in sim_hosts]
    failed = failed_pings(containers, docker_name, 4)
    assert failed == [], f"pings that failed: {failed}"


def test_per_host_ip_range_slices_of_one_docker_subnet(
    sim_hosts: list[Host], neutron: Neutron, mh_env: HostsEnv
) -> None:
    """kuryr-libnetwork's convention: every host the same ``--subnet``, its own
    ``--ip-range`` (and gateway), one Neutron network; each range is a Neutron subnet of it."""
    network = neutron.create("networks", name=mh_env.name("slices"))
    mh_env.defer(lambda: delete_network(neutron, network["id"]))
    block = ipaddress.ip_network("10.63.0.0/16")
    docker_name = mh_env.name("slices")
    containers: list[Container] = []
    ranges: dict[str, ipaddress.IPv4Network] = {}
    base = ipaddress.IPv4Network(f"10.63.{secrets.randbelow(250) + 1}.0/24")
    for host, ip_range in zip(sim_hosts, base.subnets(new_prefix=26), strict=False):
        ranges[host.name] = ip_range
        mh_env.defer(functools.partial(delete_kuryr_pool, neutron, str(ip_range)))
        mh_env.network(
            host, docker_name, "--subnet", str(block), "--ip-range", str(ip_range),
            "--gateway", str(ip_range[1]), "-o", f"neutron.net.name={network['name']}",
        )  # fmt: skip
        containers.append(mh_env.container(host, docker_name, cmd=WEB))
    subnets = slice_subnets(neutron, network["id"], ranges, containers, docker_name)
    assert_slices_talk(neutron, mh_env, subnets, containers, docker_name)


def test_ip_range_slices_on_a_network_the_first_host_made(
    sim_hosts: list[Host], neutron: Neutron, mh_env: HostsEnv
) -> None:
    """The first host's ``--subnet S --ip-range R1`` makes the Neutron network; the others
    adopt it (``-o neutron.net.name``) each with its own range of S. Every slice is a subnet of
    that network, and removing the Docker networks on every host, the creator first, leaves
    nothing: not the network, not a slice, not a ``kuryrPool-<range>``, not a port."""
    first, *others = sim_hosts
    block = ipaddress.ip_network("10.66.0.0/16")
    base = ipaddress.IPv4Network(f"10.66.{secrets.randbelow(250) + 1}.0/24")
    ranges = dict(zip((h.name for h in sim_hosts), base.subnets(new_prefix=26), strict=False))
    docker_name = mh_env.name("made-slices")

    def slice_args(host: Host) -> tuple[str, ...]:
        ip_range = ranges[host.name]
        mh_env.defer(functools.partial(delete_kuryr_pool, neutron, str(ip_range)))
        return ("--subnet", str(block), "--ip-range", str(ip_range), "--gateway", str(ip_range[1]))

    mh_env.network(first, docker_name, *slice_args(first))
    docker_id = first.docker("network", "inspect", "-f", "{{.Id}}", docker_name)
    [network] = neutron.find("networks", name=f"kuryr-net-{docker_id[:8]}")
    mh_env.defer(lambda: delete_network(neutron, network["id"]))
    for host in others:
        option = f"neutron.net.name={network['name']}"
        mh_env.network(host, docker_name, *slice_args(host), "-o", option)
    containers = [mh_env.container(host, docker_name, cmd=WEB) for host in sim_hosts]
    subnets = slice_subnets(neutron, network["id"], ranges, containers, docker_name)
    for container in containers:
        port = neutron.port_of_endpoint(container.endpoint_id(docker_name))
        assert port["network_id"] == network["id"]
        assert port["binding:host_id"] == container.host.chassis
    assert_slices_talk(neutron, mh_env, subnets, containers, docker_name)

    for container in containers:
        mh_env.remove_container(container)
    for host in sim_hosts:
        mh_env.remove_network(host, docker_name)
    # Neutron deletes a network only once no port but its own is left on it.
    neutron.wait_gone("networks", network["id"])
    wait_for(
        lambda: (
            not any(neutron.find("subnetpools", name=f"kuryrPool-{r}") for r in ranges.values())
        ),
        "the slices' kuryrPool subnetpools to go",
    )


def slice_subnets(
    neutron: Neutron,
    network_id: str,
    ranges: dict[str, ipaddress.IPv4Network],
    containers: list[Container],
    docker_name: str,
) -> list[dict[str, Any]]:
    """The network's subnets, which must be the hosts' ranges, each host's containers in its
    own range."""
    subnets = neutron.find("subnets", network_id=network_id)
    assert sorted(s["cidr"] for s in subnets) == sorted(str(r) for r in ranges.values())
    for container in containers:
        address = ipaddress.ip_address(container.address(docker_name, 4))
        assert address in ranges[container.host.name], (container.host.name, address)
    return subnets


def assert_slices_talk(
    neutron: Neutron,
    env: HostsEnv,
    subnets: list[dict[str, Any]],
    containers: list[Container],
    docker_name: str,
) -> None:
    """A container's prefix is its slice's (as with kuryr-libnetwork): the slices talk through
    a router on their gateways, as a user would wire them; every pair of hosts pings. The
    router goes again, so that the Docker networks can be removed."""
    router = neutron.create("routers", name=env.name("slices-router"))
    try:
        for subnet in subnets:
            neutron.router_interface(router["id"], "add", subnet["id"])
        failed = failed_pings(containers, docker_name, 4)
        assert failed == [], f"pings between slices that failed: {failed}"
    finally:
        for subnet in subnets:
            neutron.router_interface(router["id"], "remove", subnet["id"])
        neutron.delete("routers", router["id"])


def test_expose_on_h2_admits_a_client_on_h3_outside_its_groups(
    spanned: Spanned, sim_hosts: list[Host], neutron: Neutron, mh_env: HostsEnv
) -> None:
    """``--expose 80`` on h2: a client on h3 in a group of its own reaches port 80 of the
    exposed container, not that of an unexposed one beside it, and the exposure goes with
    the container."""
    h2, h3 = sim_hosts[1], sim_hosts[2]
    name = spanned.span.docker_name
    exposed = mh_env.container(h2, name, "--expose", "80", cmd=WEB)
    hidden = mh_env.container(h2, name, cmd=WEB)
    group = neutron.create("security-groups", name=mh_env.name("client-sg"))
    mh_env.defer(lambda: neutron.delete("security-groups", group["id"]))
    client = plug_vm(mh_env, neutron, h3, spanned.span.network, security_groups=[group["id"]])

    exposed_ip, hidden_ip = exposed.address(name, 4), hidden.address(name, 4)
    # Both serve: a member of their groups gets the page from each.
    wait_for(lambda: exposed.get(hidden_ip, "/") == PAGE, "the unexposed container to serve")
    wait_for(lambda: hidden.get(exposed_ip, "/") == PAGE, "the exposed container to serve")
    got = wait_for(lambda: client.fetch(exposed_ip, "/"), f"{client.addresses[4]} -> exposed:80")
    assert got.decode().strip() == PAGE
    assert client.fetch(hidden_ip, "/") is None, "reached port 80 of a container not exposed"

    exposed_port = neutron.port_of_endpoint(exposed.endpoint_id(name))
    hidden_port = neutron.port_of_endpoint(hidden.endpoint_id(name))
    exposure = set(exposed_port["security_groups"]) - set(hidden_port["security_groups"])
    assert exposure, "the exposed container's port has no group beyond the defaults"
    mh_env.remove_container(exposed)
    for group_id in exposure:
        neutron.wait_gone("security-groups", group_id)
