"""Requests Neutron would refuse get Kuryr's own 400 and leave nothing behind.

The MTU bound is Neutron's (its segments decide it): Kuryr turns Neutron's refusal of the
network into a 400 naming the MTU, where it used to pass on a 502.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, network_tags
from tests.fuzz_requests import post_reply
from tests.integration.private_daemon import PrivateDaemon, private_daemon
from tests.live_mutations import free_cidrs

pytestmark = pytest.mark.stack


@pytest.fixture
def daemon(stack: StackFacts) -> Iterator[PrivateDaemon]:
    with private_daemon() as started:
        yield started


def create_network(
    daemon: PrivateDaemon,
    docker_id: str,
    network_gateway: bool = False,
    options: dict[str, Any] | None = None,
) -> tuple[int, Any, str]:
    """CreateNetwork on a free /24, its gateway the first host (or the network address)."""
    cidr = free_cidrs(Neutron(), 1)[0]
    gateway = cidr.network_address if network_gateway else cidr.network_address + 1
    ipv4 = {"AddressSpace": "LocalDefault", "Pool": str(cidr), "Gateway": f"{gateway}/24"}
    body = {
        "NetworkID": docker_id,
        "Options": {"com.docker.network.generic": {}, **(options or {})},
        "IPv4Data": [ipv4],
        "IPv6Data": [],
    }
    return post_reply(daemon.socket, "/NetworkDriver.CreateNetwork", json.dumps(body).encode())


def test_an_mtu_neutron_refuses_is_a_400_and_makes_nothing(daemon: PrivateDaemon) -> None:
    docker_id = secrets.token_hex(32)
    status, answer, cause = create_network(daemon, docker_id, options={p.OPT_MTU: "9000"})
    assert (status, cause) == (400, ""), answer
    assert answer["Err"].startswith("MTU 9000 refused by Neutron: "), answer
    assert Neutron().find("networks", tags=",".join(network_tags(docker_id))) == []


def test_a_gateway_on_the_network_address_is_refused_before_neutron(
    daemon: PrivateDaemon,
) -> None:
    docker_id = secrets.token_hex(32)
    status, answer, _ = create_network(daemon, docker_id, network_gateway=True)
    assert status == 400, answer
    # Only the request parser words its refusals "<method>: <field>: ...".
    assert answer["Err"].startswith("CreateNetwork: IPv4Data.0: gateway "), answer
    assert "is the network address of pool" in answer["Err"], answer
    assert Neutron().find("networks", tags=",".join(network_tags(docker_id))) == []
