"""A dual-stack network with Kuryr's IPAM inside a VM (issue 15: both IPAMs, dual stack), in
``vlan`` mode (vm2 of ``kuryr stack up --vms 2``): a subport may be on any network, so the
test's own network gets a v4 and a v6 subnet. (In ``macvlan`` mode a container's addresses
must be the VMs' network's, which has v4 only.)

One Docker network in the VM and one on the machine's host map onto it with Kuryr's IPAM
(``--ipam-driver kuryr``, tests.e2e.multihost.span); the VM's containers get both addresses
on their subports and reach each other and the host's container over both."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from kuryr.stack import vmplan
from tests.e2e.helpers import Neutron, settle
from tests.e2e.multihost import Host, HostsEnv, span
from tests.e2e.nested import NestedVm

pytestmark = pytest.mark.stack


def test_dual_stack_kuryr_ipam_in_a_vlan_vm(
    sim_vms: list[NestedVm], main_host: Host, neutron: Neutron
) -> None:
    vm = next(v for v in sim_vms if v.mode == vmplan.VLAN)
    subports_before = vm.subports(neutron)
    env = HostsEnv()
    try:
        net = span(env, neutron, [vm.host, main_host])
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
        failed = [
            f"{a.name}->{b.name} IPv{v}"
            for v in (4, 6)
            for a, b in pairs
            if not a.pings(b.address(name, v))
        ]
        assert failed == [], f"pings that failed: {failed}"

        for container in [*in_vm, on_host]:
            env.remove_container(container)
        env.remove_network(vm.host, name)
        # The network's removal in the VM gives back its pool ports too: no subport is left.
        assert settle(lambda: vm.subports(neutron), subports_before) == subports_before
    finally:
        env.close()
