"""The seed's scenario as reusable steps: two containers on a Kuryr network, checked against
Neutron, OVN and each other, then torn down and checked gone.

The whole scenario (:func:`seed_network`, :func:`seed_mac`) runs against whatever Docker
calls Kuryr in the :class:`DockerEnv` given (its ``driver``): the bare daemon
(tests/e2e/test_seed_scenario.py) or the managed plugin
(tests/e2e/test_stack_lifecycle_plugin_e2e.py).
"""

from __future__ import annotations

import ipaddress
import random
import secrets
from typing import Any

import pytest

from tests.e2e.helpers import (
    NEUTRON_MAC_PREFIX,
    PORT_OWNER,
    DockerEnv,
    Endpoint,
    Neutron,
    chassis_hostname,
    docker,
    docker_network_id,
    docker_network_subnets,
    endpoint,
    eth0,
    ovn_logical_ports,
    ovn_switch_exists,
    ping_all,
    port_ips,
)


def free_subnet(neutron: Neutron, template: str, choices: range) -> str:
    """``template`` filled with one of ``choices`` that no Neutron subnet or Docker network uses."""
    used = {s["cidr"] for s in neutron.find("subnets")}
    for name in docker("network", "ls", "--format", "{{.Name}}").split():
        subnets = docker(
            "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", name
        )
        used.update(subnets.split())
    free = [template.format(x) for x in choices if template.format(x) not in used]
    assert free, f"no free {template} for {choices}"
    return random.choice(free)


def free_kuryr_subnet(neutron: Neutron) -> str:
    """A ``10.10.<x>.0/24`` (inside the ``kuryr`` pool's prefix) with x in 200..250."""
    return free_subnet(neutron, "10.10.{}.0/24", range(200, 251))


def check_endpoint(neutron: Neutron, ep: Endpoint, network: dict[str, Any]) -> dict[str, Any]:
    """The container's eth0 carries its Neutron port's addresses and MAC; returns the port."""
    port = neutron.port_of_endpoint(ep.endpoint_id)
    assert port["network_id"] == network["id"]
    assert port["device_owner"] == PORT_OWNER
    assert port["binding:host_id"] == chassis_hostname()
    seen = eth0(ep.container)
    assert seen.mac == port["mac_address"], f"eth0 MAC {seen.mac} != port MAC"
    assert seen.addresses == port_ips(port), f"eth0 {seen.addresses} != port {port_ips(port)}"
    docker_ips = {a for a in (ep.ipv4, ep.ipv6) if a}
    assert docker_ips == port_ips(port), f"docker says {docker_ips}, Neutron {port_ips(port)}"
    return port


def two_containers(
    env: DockerEnv,
    neutron: Neutron,
    net: str,
    neutron_net: dict[str, Any],
    run_args: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
    ipv6: bool = False,
) -> None:
    """Two containers: addresses, MACs, ACTIVE ports, OVN, pings; then rm and ports gone.

    ``run_args`` are extra ``docker run`` arguments, one tuple per container; ``ipv6`` says
    whether each container must also have an IPv6 address.
    """
    names = [env.container(net, *args) for args in run_args]
    eps = [endpoint(n, net) for n in names]
    for ep in eps:
        assert ep.ipv4, f"{ep.container} has no IPv4 address"
        assert bool(ep.ipv6) == ipv6, f"{ep.container} IPv6 address {ep.ipv6!r}"
    ports = [check_endpoint(neutron, ep, neutron_net) for ep in eps]
    for args, port in zip(run_args, ports, strict=True):
        if "--mac-address" in args:
            assert port["mac_address"] == args[args.index("--mac-address") + 1]
        else:
            assert port["mac_address"].startswith(NEUTRON_MAC_PREFIX), port["mac_address"]
    for port in ports:
        neutron.wait_active(port["id"])

    switch = f"neutron-{neutron_net['id']}"
    assert ovn_switch_exists(switch), f"OVN NB has no logical switch {switch}"
    lsps = ovn_logical_ports(switch)
    for port in ports:
        assert port["id"] in lsps, f"logical port {port['id']} missing from {switch}: {lsps}"

    jobs = [
        (src.container, address)
        for src, dst in ((eps[0], eps[1]), (eps[1], eps[0]))
        for address in (dst.ipv4, dst.ipv6)
        if address
    ]
    for (source, address), result in zip(jobs, ping_all(jobs), strict=True):
        assert result.returncode == 0, f"{source} -> {address}: {result.stdout}"

    for name, port in zip(names, ports, strict=True):
        env.remove_container(name)
        neutron.wait_released(port["id"])
    for ep in eps:
        assert neutron.find("ports", device_id=ep.endpoint_id) == []


def remove_network(env: DockerEnv, neutron: Neutron, net: str, neutron_net: dict[str, Any]) -> None:
    """``docker network rm`` deletes the Neutron network and its subnets."""
    subnets = list(neutron_net["subnets"])
    env.remove_network(net)
    neutron.wait_gone("networks", neutron_net["id"])
    for subnet in subnets:
        neutron.wait_gone("subnets", subnet)


def random_ula_subnet() -> str:
    """A random IPv6 ULA /64: collisions with anything else on the stack are negligible."""
    groups = [
        secrets.token_hex(1),
        secrets.token_hex(2),
        secrets.token_hex(2),
        secrets.token_hex(2),
    ]
    return f"fd{groups[0]}:{groups[1]}:{groups[2]}:{groups[3]}::/64"


# The seed scenario's cases: Kuryr's IPAM or Docker's, with or without ``--subnet``.
each_ipam = pytest.mark.parametrize("ipam", ["kuryr", "docker"], ids=["kuryr-ipam", "docker-ipam"])
each_subnet = pytest.mark.parametrize(
    "explicit_subnet", [False, True], ids=["auto-subnet", "explicit-subnet"]
)


def seed_network(env: DockerEnv, neutron: Neutron, ipam: str, explicit_subnet: bool) -> None:
    """A Kuryr network with its Neutron network and subnet as named and pooled, two
    containers on it, then the network removed; the default subnetpools unchanged."""
    pools = neutron.default_pools()
    args: list[str] = []
    if ipam == "kuryr":
        args += env.kuryr_ipam()
    wanted = free_kuryr_subnet(neutron) if explicit_subnet else None
    if wanted:
        args += ["--subnet", wanted]
    net = env.network(*args)
    docker_id = docker_network_id(net)

    neutron_net = neutron.network_of_docker(docker_id)
    assert neutron_net["name"] == f"kuryr-net-{docker_id[:8]}"
    subnets = neutron.find("subnets", network_id=neutron_net["id"])
    assert [s["ip_version"] for s in subnets] == [4], subnets
    subnet = subnets[0]
    assert docker_network_subnets(net) == [subnet["cidr"]]
    if wanted:
        assert subnet["cidr"] == wanted
    if ipam == "kuryr" and not explicit_subnet:
        assert subnet["subnetpool_id"] == pools["kuryr"]["id"]
        assert ipaddress.IPv4Network(subnet["cidr"]).subnet_of(
            ipaddress.IPv4Network(pools["kuryr"]["prefixes"][0])
        )

    two_containers(env, neutron, net, neutron_net)
    remove_network(env, neutron, net, neutron_net)
    assert neutron.default_pools() == pools


def seed_mac(env: DockerEnv, neutron: Neutron) -> None:
    """A container's MAC is its Neutron port's, unless ``--mac-address`` asks for another."""
    net = env.network(*env.kuryr_ipam())
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    mac = "02:e2:e0:" + ":".join(f"{b:02x}" for b in random.randbytes(3))
    two_containers(env, neutron, net, neutron_net, run_args=(("--mac-address", mac), ()))
