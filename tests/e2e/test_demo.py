"""The main job: ``make demo`` runs ``python -m kuryr.stack.demo`` against the stack. It passes the
first time and again right after, the second run reusing what the first left (the network
``test``; the containers ``demo1``/``demo2`` are replaced), and what it shows is true.

The demo's names are fixed (the contract with its users), so a ``test`` network a user's
earlier demo left is reused, not an error; the test removes the demo's containers and network
at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from kuryr.stack.demo import CONTAINERS, NETWORK
from tests.e2e.helpers import (
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    port_ips,
    run,
)

pytestmark = pytest.mark.stack

DEMO_TIMEOUT = 300.0
REUSED = f"reusing the Kuryr network {NETWORK!r}"


@pytest.fixture
def demo_leftovers() -> Iterator[None]:
    """Remove what the demo made: its containers, then its network (the daemon removes the
    Neutron one, in the background when its pool ports take long)."""
    yield
    docker("rm", "-f", *CONTAINERS, check=False)
    found = run(["docker", "network", "inspect", NETWORK], check=False)
    if found.returncode == 0:
        docker("network", "rm", NETWORK)


def run_demo() -> str:
    """``python -m kuryr.stack.demo`` as ``make demo`` runs it; its output, or a failure with it."""
    done = run([sys.executable, "-m", "kuryr.stack.demo"], check=False, timeout=DEMO_TIMEOUT)
    assert done.returncode == 0, f"demo failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_demo_passes_twice_in_a_row(demo_leftovers: None, neutron: Neutron) -> None:
    run_demo()
    second = run_demo()
    assert REUSED in second, f"the second run did not reuse the network:\n{second}"

    neutron_net = neutron.network_of_docker(docker_network_id(NETWORK))["id"]
    for name in CONTAINERS:
        ep = endpoint(name, NETWORK)
        ports = neutron.find("ports", device_id=ep.endpoint_id)
        assert len(ports) == 1, f"{name}: ports with its device_id: {ports}"
        port = ports[0]
        assert port["network_id"] == neutron_net
        assert port_ips(port) == {ep.ipv4}
        assert port["mac_address"] == ep.mac
        assert port["id"] in second, f"the demo did not show {name}'s port {port['id']}"
