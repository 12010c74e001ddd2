"""``docker stop``/``docker start`` cycles: exactly one Neutron port per running container,
owned by its current endpoint, and none left after ``docker rm``."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import (
    PORT_OWNER,
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    ping,
    settle,
)

pytestmark = pytest.mark.stack

CYCLES = 5


def endpoint_ports(neutron: Neutron, network_id: str) -> list[str]:
    """device_id of every endpoint port on the network, sorted (duplicates kept)."""
    ports = neutron.find("ports", network_id=network_id, device_owner=PORT_OWNER)
    return sorted(p["device_id"] for p in ports if p["device_id"])


def test_stop_start_cycles_keep_one_port_per_running_container(
    env: DockerEnv, neutron: Neutron
) -> None:
    net = env.network("--ipam-driver", "kuryr")
    network_id = neutron.network_of_docker(docker_network_id(net))["id"]
    steady = env.container(net)
    cycled = env.container(net)

    def running_endpoints() -> list[str]:
        return sorted(endpoint(c, net).endpoint_id for c in (steady, cycled))

    for cycle in range(CYCLES):
        docker("stop", "-t", "1", cycled)
        expected = [endpoint(steady, net).endpoint_id]
        found = settle(lambda: endpoint_ports(neutron, network_id), expected)
        assert found == expected, f"cycle {cycle}, stopped: ports for {found}"

        docker("start", cycled)
        expected = running_endpoints()
        found = settle(lambda: endpoint_ports(neutron, network_id), expected)
        assert found == expected, f"cycle {cycle}, started: ports for {found}"

    target = endpoint(steady, net).ipv4
    result = ping(cycled, target)
    assert result.returncode == 0, f"after {CYCLES} cycles {cycled} -> {target}: {result.stdout}"

    env.remove_container(cycled)
    env.remove_container(steady)
    found = settle(lambda: endpoint_ports(neutron, network_id), [])
    assert found == [], f"ports left after docker rm: {found}"
