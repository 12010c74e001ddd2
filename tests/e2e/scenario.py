"""The seed's scenario as reusable steps: two containers on a Kuryr network, checked against
Neutron, OVN and each other, then torn down and checked gone."""

from __future__ import annotations

import random
import secrets
from typing import Any

from tests.e2e.helpers import (
    NEUTRON_MAC_PREFIX,
    PORT_OWNER,
    DockerEnv,
    Endpoint,
    Neutron,
    chassis_hostname,
    docker,
    endpoint,
    eth0,
    ovn_logical_ports,
    ovn_switch_exists,
    ping,
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

    for src, dst in ((eps[0], eps[1]), (eps[1], eps[0])):
        for address in (dst.ipv4, dst.ipv6):
            if address:
                result = ping(src.container, address)
                assert result.returncode == 0, f"{src.container} -> {address}: {result.stdout}"

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
