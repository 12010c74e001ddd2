"""A dual-stack network inside a VM (issue 15: both IPAMs, dual stack), in each nested
mode of ``kuryr stack up --vms 2``.

``vlan`` (vm2): a subport may be on any network, so the test's own network gets a v4 and a
v6 subnet. One Docker network in the VM and one on the machine's host map onto it, with
Kuryr's IPAM (``--ipam-driver kuryr``, tests.e2e.multihost.span) or Docker's (each host on
ranges of its own); the VM's containers get both addresses on their subports and reach each
other and the host's container over both.

``macvlan`` (vm1): a container's addresses must be the VMs' network's, which has v4 only, so
the test adds a v6 subnet to it for its run. The containers' v6 addresses are pairs of the
VM's port like their v4 ones, and their link-local addresses the EUI-64 of their MACs, the
ones OVN's port security allows beside a pair's addresses. Over v4 the VM's containers and
the host's reach each other both ways; over v6 the VM's containers reach each other and the
host's container reaches them. This stack's Neutron (21.0.0) and OVN (23.03.1) break the
rest, each test stating how and asserting that cause before it counts as the expected
failure (strict xfails: they fail once the stack is fixed): v6 from a VM container to the
host's (NEUTRON_VIRTUAL_ADDRESSES) and link-local between them (OVN_NA_HOP_LIMIT).

In both, one VM container runs with ``--mac-address``: its device carries that MAC, as on a
host (macvlan: and so does its pair, kuryr.backends.binding.macvlan)."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from kuryr.backends.binding.macvlan import device_mac
from kuryr.stack import vmplan
from tests.e2e.helpers import Neutron, ovn_nbctl, run, settle, wait_for
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


# What this machine's stack breaks of IPv6 in macvlan mode (README, Nested mode). Each is
# the reason of a strict xfail: the test fails the day the stack no longer has it.
OVN_NA_HOP_LIMIT = (
    "OVN 23.03.1's ovn-controller allows a port's neighbour advertisements for the EUI-64 "
    "link-local address of each MAC of its port security only with hop limit 225, where "
    "RFC 4861 sends 255 (controller/lflow.c, build_in_port_sec_nd_flows), so its default "
    "drop takes them: no link-local address behind a port with IPv6 port security (the VM "
    "port's pairs, the host container's port) is resolved through OVN. Fixed by OVN commit "
    "9dc56cf44 'Use correct nw_ttl=255 to match against legit NAs' (branch-23.03, v23.03.2)"
)
NEUTRON_VIRTUAL_ADDRESSES = (
    "Neutron 21.0.0's ML2/OVN (ovn_client._get_port_options) writes the OVN addresses of a "
    "virtual port only up to its first fixed IP that is another port's allowed address "
    "pair: the container's port (virtual, its addresses being pairs of the VM port) lists "
    "its v4 address, not its v6 one, so OVN's address set of the default group lacks it and "
    "the host container's port (default group: ingress from the group only) drops what the "
    "VM's container opens over v6; its answers to the host's pings pass as replies. Neutron "
    "lists every fixed IP from commit ac24dbed1c (23.0.0; c8376e2a01 in 22.1.0)"
)


class NaHopLimit225(AssertionError):
    """Link-local pings failed, and br-int allows each target's advertisements only with
    hop limit 225 (OVN_NA_HOP_LIMIT)."""


class V6MissingFromOvnAddresses(AssertionError):
    """v6 pings from VM containers failed, and each one's port lists no v6 address in OVN
    (NEUTRON_VIRTUAL_ADDRESSES)."""


@dataclass(frozen=True)
class MacvlanDualStack:
    """vm1's containers on the VMs' network with a v6 subnet added (one of them run with
    ``--mac-address``), and a container on the machine's host on the same network."""

    vm: NestedVm
    name: str
    in_vm: list[Container]
    on_host: Container
    mac: str


def _delete_subnet(neutron: Neutron, subnet_id: str) -> None:
    """Once the daemons have given back the ports holding its addresses."""
    wait_for(
        lambda: not neutron.find("ports", fixed_ips=f"subnet_id={subnet_id}"),
        f"the ports on subnet {subnet_id} to go",
    )
    neutron.delete("subnets", subnet_id)


@pytest.fixture(scope="module")
def macvlan_v6(
    sim_vms: list[NestedVm], main_host: Host, neutron: Neutron
) -> Iterator[MacvlanDualStack]:
    """One set-up for the module's macvlan tests (each container start costs seconds); at
    its end, the containers and the network removed, the VM port's pairs are as before."""
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
        yield MacvlanDualStack(vm, name, in_vm, on_host, mac)

        for container in [*in_vm, on_host]:
            env.remove_container(container)
        env.remove_network(vm.host, name)
        # The VIFs go once their ports' deletes are in Neutron (test_nested.py's last test).
        assert settle(lambda: vm.pairs(neutron), pairs_before) == pairs_before
    finally:
        env.close()


def _both_ways(net: MacvlanDualStack) -> list[tuple[Container, Container]]:
    """(from, to) between each VM container and the host's, each way."""
    return [*((c, net.on_host) for c in net.in_vm), *((net.on_host, c) for c in net.in_vm)]


def test_dual_stack_and_a_mac_address_in_a_macvlan_vm(
    macvlan_v6: MacvlanDualStack, neutron: Neutron
) -> None:
    """Each VM container's device MAC is in a pair of the VM port with each of its
    addresses, and its link-local address is the EUI-64 of that MAC; ``--mac-address`` is
    honoured. Over v4 the VM's containers reach each other and the host's container both
    ways; over v6 each other, and the host's container reaches them. (What this stack's
    Neutron and OVN break, v6 from a VM container to the host's and link-local between
    them, is in the two strict xfails below.)"""
    net, name = macvlan_v6, macvlan_v6.name
    in_vm, on_host = net.in_vm, net.on_host
    between = {
        4: [*itertools.permutations(in_vm, 2), *_both_ways(net)],
        6: [*itertools.permutations(in_vm, 2), *((on_host, c) for c in in_vm)],
    }
    jobs = [
        (a, b.address(name, v), f"{a.name}->{b.name} IPv{v}")
        for v, pairs in between.items()
        for a, b in pairs
    ]
    failed = _failed_pings(jobs)

    pairs = net.vm.pairs(neutron)
    for container in in_vm:
        port = neutron.port_of_endpoint(container.endpoint_id(name))
        addresses = {container.address(name, v) for v in (4, 6)}
        assert {f["ip_address"] for f in port["fixed_ips"]} == addresses
        seen = _mac_of(container)
        assert seen == device_mac(port["mac_address"]), f"{container.name}: MAC {seen}"
        assert {(a, seen) for a in addresses} <= pairs, f"{container.name}: pairs {pairs}"
        assert _link_local(container) == _eui64_link_local(seen)
    assert _mac_of(in_vm[1]) == net.mac, "--mac-address not honoured"
    assert failed == [], f"pings that failed: {failed}"


def _flows_wanting_hop_limit_225(link_local: str) -> list[str]:
    """br-int's flows that allow a neighbour advertisement for ``link_local`` only with hop
    limit 225 (OVN_NA_HOP_LIMIT)."""
    target = re.compile(rf"\bnd_target={re.escape(link_local)}\b")
    flows = run(["ovs-ofctl", "dump-flows", "br-int"]).stdout.splitlines()
    return [f for f in flows if "icmp_type=136" in f and "nw_ttl=225" in f and target.search(f)]


@pytest.mark.xfail(strict=True, raises=NaHopLimit225, reason=OVN_NA_HOP_LIMIT)
def test_link_local_between_a_macvlan_vm_and_a_host(macvlan_v6: MacvlanDualStack) -> None:
    """Link-local v6 between each VM container and the host's container, both ways. Fails
    as expected only when every failed ping's target is one OVN_NA_HOP_LIMIT silences;
    any other failure is a failure."""
    link_locals = {c.name: _link_local(c) for c in [*macvlan_v6.in_vm, macvlan_v6.on_host]}
    # label -> the link-local address pinged
    targets = {
        f"{a.name}->{b.name} link-local": link_locals[b.name] for a, b in _both_ways(macvlan_v6)
    }
    jobs = [
        (a, f"{link_locals[b.name]}%eth0", f"{a.name}->{b.name} link-local")
        for a, b in _both_ways(macvlan_v6)
    ]
    failed = _failed_pings(jobs)
    if failed:
        flows = {label: _flows_wanting_hop_limit_225(targets[label]) for label in failed}
        unexplained = [label for label, found in flows.items() if not found]
        assert not unexplained, f"link-local pings failed with no hop limit 225 flow: {unexplained}"
        raise NaHopLimit225(f"pings that failed: {failed}; flows: {flows}")


def _ips(addresses: str) -> set[str]:
    """The IP addresses in a Logical_Switch_Port's ``addresses`` as ovn-nbctl prints them
    (``["<mac> <ip> <ip>", "<mac>"]``), in Python's notation, as Docker reports them."""
    found = set()
    for word in re.findall(r'[^\s"\[\],]+', addresses):
        try:
            found.add(str(ipaddress.ip_address(word)))
        except ValueError:
            continue  # a MAC
    return found


@pytest.mark.xfail(strict=True, raises=V6MissingFromOvnAddresses, reason=NEUTRON_VIRTUAL_ADDRESSES)
def test_v6_from_a_macvlan_vm_to_a_host(macvlan_v6: MacvlanDualStack, neutron: Neutron) -> None:
    """v6 from each VM container to the host's container. Fails as expected only when each
    failed ping's container has a port whose OVN addresses lack its v6 address; any other
    failure is a failure."""
    net, name = macvlan_v6, macvlan_v6.name
    jobs = [(c, net.on_host.address(name, 6), c.name) for c in net.in_vm]
    failed = _failed_pings(jobs)
    if failed:
        listed = {}
        for container in net.in_vm:
            if container.name in failed:
                port = neutron.port_of_endpoint(container.endpoint_id(name))
                addresses = ovn_nbctl("get", "Logical_Switch_Port", port["id"], "addresses")
                listed[container.name] = (container.address(name, 6), addresses)
        unexplained = [n for n, (v6, addresses) in listed.items() if v6 in _ips(addresses)]
        assert not unexplained, f"v6 pings failed from {unexplained}, whose v6 OVN lists: {listed}"
        raise V6MissingFromOvnAddresses(f"v6 pings failed from {failed}; OVN addresses: {listed}")
