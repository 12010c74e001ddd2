"""dockerd restarted: Kuryr networks made before keep working (dockerd never replays
CreateNetwork, so the daemon must find its networks again by itself).

Disruptive: stops and starts the shared stack's dockerd (by its pidfile); conftest runs this
file after the other tests, and the stack is brought up again whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kuryr.stack.docker import Docker
from tests.conftest import StackFacts, bring_up
from tests.e2e.helpers import (
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    eth0,
    ping_all,
    port_ips,
)

pytestmark = pytest.mark.stack


@pytest.fixture
def dockerd(stack: StackFacts) -> Iterator[Docker]:
    try:
        yield Docker(stack.layout)
    finally:
        bring_up(stack.layout)


def test_networks_keep_working_after_dockerd_restart(
    stack: StackFacts, rel_env: DockerEnv, dockerd: Docker
) -> None:
    neutron = Neutron()
    net = rel_env.network("--ipam-driver", "kuryr")
    network_id = docker_network_id(net)
    neutron_net = neutron.network_of_docker(network_id)
    first = rel_env.container(net)

    dockerd.stop()
    dockerd.start()

    assert docker_network_id(net) == network_id
    docker("start", first)
    second = rel_env.container(net)
    a, b = endpoint(first, net), endpoint(second, net)
    for ep in (a, b):
        port = neutron.port_of_endpoint(ep.endpoint_id)
        assert port["network_id"] == neutron_net["id"]
        assert port_ips(port) == {ep.ipv4}
        assert ep.ipv4 in eth0(ep.container).addresses
    there, back = ping_all([(first, b.ipv4), (second, a.ipv4)])
    assert there.returncode == 0
    assert back.returncode == 0

    rel_env.remove_container(first)
    rel_env.remove_container(second)
    rel_env.remove_network(net)
    neutron.wait_gone("networks", neutron_net["id"])
