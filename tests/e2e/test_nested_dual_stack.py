"""A dual-stack network inside a VM, with each IPAM (issue 15: both IPAMs, dual stack), in
``vlan`` mode (vm2 of ``kuryr stack up --vms 2``): a subport may be on any network, so the
test's own network gets a v4 and a v6 subnet. (In ``macvlan`` mode a container's addresses
must be the VMs' network's, which has v4 only.)

One Docker network in the VM and one on the machine's host map onto it, with Kuryr's IPAM
(``--ipam-driver kuryr``, tests.e2e.multihost.span) or Docker's (each host on ranges of its
own); the VM's containers get both addresses on their subports and reach each other and the
host's container over both."""

from __future__ import annotations

import ipaddress
import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest

from kuryr.stack import vmplan
from tests.e2e.helpers import Neutron, settle
from tests.e2e.multihost import (
    Host,
    HostsEnv,
    Span,
    neutron_span,
    span,
)
from tests.e2e.nested import NestedVm

pytestmark = pytest.mark.stack


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
        in_vm = [env.container(vm.host, name) for _ in range(2)]
        on_host = env.container(main_host, name)
        for container in in_vm:
            port = neutron.port_of_endpoint(container.endpoint_id(name))
            assert port["id"] in vm.subports(neutron), "the port is no subport of the VM's"
            addresses = {v: container.address(name, v) for v in (4, 6)}
            for version, address in addresses.items():
                assert ipaddress.ip_address(address) in ipaddress.ip_network(net.cidrs[version])
            assert {f["ip_address"] for f in port["fixed_ips"]} == set(addresses.values())

        pairs = [*itertools.permutations(in_vm, 2), (in_vm[0], on_host), (on_host, in_vm[0])]
        jobs = [(a, b, v) for v in (4, 6) for a, b in pairs]
        # Side by side: each ping takes seconds, and none depends on another.
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            pinged = list(pool.map(lambda j: j[0].pings(j[1].address(name, j[2])), jobs))
        failed = [
            f"{a.name}->{b.name} IPv{v}"
            for (a, b, v), ok in zip(jobs, pinged, strict=True)
            if not ok
        ]
        assert failed == [], f"pings that failed: {failed}"

        for container in [*in_vm, on_host]:
            env.remove_container(container)
        env.remove_network(vm.host, name)
        # The network's removal in the VM gives back its pool ports too: no subport is left.
        assert settle(lambda: vm.subports(neutron), subports_before) == subports_before
    finally:
        env.close()
