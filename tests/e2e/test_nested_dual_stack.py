"""A dual-stack network inside a VM (issue 15: both IPAMs, dual stack), in each nested
mode of ``kuryr stack up --vms 2``.

``vlan`` (vm2): a subport may be on any network, so the test's own network gets a v4 and a
v6 subnet. One Docker network in the VM and one on the machine's host map onto it, with
Kuryr's IPAM (``--ipam-driver kuryr``, tests.e2e.multihost.span) or Docker's (each host on
ranges of its own); the VM's containers get both addresses on their subports and reach each
other and the host's container over both.

``macvlan`` (vm1): a container's addresses must be the VMs' network's, which has v4 only, so
the test adds a v6 subnet to it for its run. The containers' v6 addresses are pairs of the
VM's port like their v4 ones; OVN's port security then lets through their neighbour
discovery and their link-local addresses (derived from each pair's MAC) too.

In both, one VM container runs with ``--mac-address``: its device carries that MAC, as on a
host (macvlan: and so does its pair, kuryr.backends.binding.macvlan)."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from kuryr.backends.binding.macvlan import device_mac
from kuryr.stack import vmplan
from tests.e2e.helpers import Neutron, settle, wait_for
from tests.e2e.multihost import (
    Container,
    Host,
    HostsEnv,
    Span,
    delete_kuryr_pool,
    neutron_span,
    random_v6,
    span,
)
from tests.e2e.nested import NestedVm

pytestmark = pytest.mark.stack

SLEEP = ("sleep", "3600")


def _ip_range(cidr: str, part: int) -> str:
    """A slice of the subnet of each host's own (``part`` 1, 2, …), clear of the low
    addresses Neutron hands its own ports (the network's metadata port)."""
    network = ipaddress.ip_network(cidr)
    if network.version == 4:
        return str(ipaddress.ip_network((int(network.network_address) + part * 64, 26)))
    return str(ipaddress.ip_network((int(network.network_address) + (part << 16), 112)))


def _docker_ipam_span(env: HostsEnv, neutron: Neutron, hosts: list[Host]) -> Span:
    """As tests.e2e.multihost.span, on Docker's IPAM: each dockerd hands out addresses on
    its own, so each host's network gets ranges of the subnets no other host's has."""
    made = neutron_span(env, neutron, (4, 6))
    for part, host in enumerate(hosts, start=1):
        args = [
            a
            for cidr in made.cidrs.values()
            for a in ("--subnet", cidr, "--ip-range", _ip_range(cidr, part))
        ]
        opts = ("--ipv6", "-o", f"neutron.net.name={made.network['name']}")
        env.network(host, made.docker_name, *args, *opts, ipam="docker")
    return made


def _random_mac() -> str:
    """A locally administered unicast MAC, as Docker makes its own."""
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def _link_local(container: Container) -> str:
    """The link-local address of the container's eth0 (scope 0x20 in /proc/net/if_inet6)."""
    for line in container.exec("cat", "/proc/net/if_inet6").splitlines():
        hexaddr, _, _, scope, _, ifname = line.split()
        if ifname == "eth0" and scope == "20":
            return str(ipaddress.IPv6Address(bytes.fromhex(hexaddr)))
    raise AssertionError(f"{container.name}'s eth0 has no link-local address")


def _eui64_link_local(mac: str) -> str:
    """fe80::/64 with the modified EUI-64 of ``mac``: the address OVN's port security allows
    beside a port security entry's own IPv6 addresses, for that entry's MAC."""
    octets = bytearray(int(o, 16) for o in mac.split(":"))
    octets[0] ^= 0x02
    iid = bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


def _failed_pings(jobs: list[tuple[Container, str, str]]) -> list[str]:
    """(from, to address, label) for each ping; the labels of those that failed. Side by
    side: each ping takes seconds, and none depends on another."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        pinged = list(pool.map(lambda j: j[0].pings(j[1]), jobs))
    return [label for (_, _, label), ok in zip(jobs, pinged, strict=True) if not ok]


def _mac_of(container: Container) -> str:
    return container.exec("cat", "/sys/class/net/eth0/address").lower()


@pytest.mark.parametrize("ipam", ["kuryr", "docker"], ids=["kuryr-ipam", "docker-ipam"])
def test_dual_stack_in_a_vlan_vm(
    sim_vms: list[NestedVm], main_host: Host, neutron: Neutron, ipam: str
) -> None:
    vm = next(v for v in sim_vms if v.mode == vmplan.VLAN)
    subports_before = vm.subports(neutron)
    env = HostsEnv()
    try:
        hosts = [vm.host, main_host]
        if ipam == "kuryr":
            net = span(env, neutron, hosts)
        else:
            net = _docker_ipam_span(env, neutron, hosts)
        name = net.docker_name
        mac = _random_mac()
        in_vm = [env.container(vm.host, name), env.container(vm.host, name, "--mac-address", mac)]
        on_host = env.container(main_host, name)
        for container in in_vm:
            port = neutron.port_of_endpoint(container.endpoint_id(name))
            assert port["id"] in vm.subports(neutron), "the port is no subport of the VM's"
            addresses = {v: container.address(name, v) for v in (4, 6)}
            for version, address in addresses.items():
                assert ipaddress.ip_address(address) in ipaddress.ip_network(net.cidrs[version])
            assert {f["ip_address"] for f in port["fixed_ips"]} == set(addresses.values())
            # As on a host: the device carries its port's MAC, --mac-address's if given.
            assert _mac_of(container) == port["mac_address"].lower()
        assert _mac_of(in_vm[1]) == mac

        pairs = [*itertools.permutations(in_vm, 2), (in_vm[0], on_host), (on_host, in_vm[0])]
        jobs = [
            (a, b.address(name, v), f"{a.name}->{b.name} IPv{v}") for v in (4, 6) for a, b in pairs
        ]
        failed = _failed_pings(jobs)
        assert failed == [], f"pings that failed: {failed}"

        for container in [*in_vm, on_host]:
            env.remove_container(container)
        env.remove_network(vm.host, name)
        # The network's removal in the VM gives back its pool ports too: no subport is left.
        assert settle(lambda: vm.subports(neutron), subports_before) == subports_before
    finally:
        env.close()


def _delete_subnet(neutron: Neutron, subnet_id: str) -> None:
    """Once the daemons have given back the ports holding its addresses."""
    wait_for(
        lambda: not neutron.find("ports", fixed_ips=f"subnet_id={subnet_id}"),
        f"the ports on subnet {subnet_id} to go",
    )
    neutron.delete("subnets", subnet_id)


def test_dual_stack_and_a_mac_address_in_a_macvlan_vm(
    sim_vms: list[NestedVm], main_host: Host, neutron: Neutron
) -> None:
    """vm1's containers on the VMs' network with a v6 subnet added, one of them with
    ``--mac-address``: each device's MAC is in a pair with each of its addresses, and its
    link-local address is the EUI-64 of that MAC; over v4, v6 and link-local v6 the VM's
    containers reach each other and the host's container, both ways (so each one's neighbour
    solicitations and advertisements pass the VM port's port security)."""
    vm = next(v for v in sim_vms if v.mode == vmplan.MACVLAN)
    pairs_before = vm.pairs(neutron)
    env = HostsEnv()
    try:
        (network,) = neutron.find("networks", name=vmplan.NETWORK)
        v6 = random_v6()
        # No DHCP: nothing of Neutron's own (the metadata port) takes an address on it.
        subnet = neutron.create(
            "subnets",
            name=env.name("subnet6"),
            network_id=network["id"],
            ip_version=6,
            cidr=v6,
            enable_dhcp=False,
        )
        env.defer(lambda: _delete_subnet(neutron, subnet["id"]))
        for cidr in (vmplan.SUBNET_CIDR, v6):
            env.defer(functools.partial(delete_kuryr_pool, neutron, cidr))
        name = env.name("docker-net")
        subnets = ("--subnet", vmplan.SUBNET_CIDR, "--subnet", v6, "--ipv6")
        for host in (vm.host, main_host):
            env.network(host, name, *subnets, "-o", f"neutron.net.name={vmplan.NETWORK}")
        mac = _random_mac()
        in_vm = [
            env.container(vm.host, name, cmd=SLEEP),
            env.container(vm.host, name, "--mac-address", mac, cmd=SLEEP),
        ]
        on_host = env.container(main_host, name, cmd=SLEEP)

        between = [
            *itertools.permutations(in_vm, 2),
            *((c, on_host) for c in in_vm),
            *((on_host, c) for c in in_vm),
        ]
        jobs = [
            (a, b.address(name, v), f"{a.name}->{b.name} IPv{v}")
            for v in (4, 6)
            for a, b in between
        ]
        jobs += [
            (a, f"{_link_local(b)}%eth0", f"{a.name}->{b.name} link-local")
            for a, b in between
            if on_host in (a, b)
        ]
        failed = _failed_pings(jobs)

        pairs = vm.pairs(neutron)
        for container in in_vm:
            port = neutron.port_of_endpoint(container.endpoint_id(name))
            addresses = {container.address(name, v) for v in (4, 6)}
            assert {f["ip_address"] for f in port["fixed_ips"]} == addresses
            seen = _mac_of(container)
            assert seen == device_mac(port["mac_address"]), f"{container.name}: MAC {seen}"
            assert {(a, seen) for a in addresses} <= pairs, f"{container.name}: pairs {pairs}"
            assert _link_local(container) == _eui64_link_local(seen)
        assert _mac_of(in_vm[1]) == mac, "--mac-address not honoured"
        assert failed == [], f"pings that failed: {failed}"

        for container in [*in_vm, on_host]:
            env.remove_container(container)
        env.remove_network(vm.host, name)
        # The VIFs go once their ports' deletes are in Neutron (test_nested.py's last test).
        assert settle(lambda: vm.pairs(neutron), pairs_before) == pairs_before
    finally:
        env.close()
