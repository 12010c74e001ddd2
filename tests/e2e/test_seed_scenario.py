"""The seed's scenario: a Kuryr network, two containers on it, end to end through dockerd.

Run with Kuryr's IPAM and with Docker's own, with and without ``--subnet``; none needs
``--gateway``. The default subnetpools must come out of all of it unchanged. The steps are
in tests/e2e/scenario.py, shared with the same scenario on the managed plugin.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import DockerEnv, Neutron
from tests.e2e.scenario import each_ipam, each_subnet, seed_mac, seed_network

pytestmark = pytest.mark.stack


@each_subnet
@each_ipam
def test_two_containers_on_a_kuryr_network(
    env: DockerEnv, neutron: Neutron, ipam: str, explicit_subnet: bool
) -> None:
    seed_network(env, neutron, ipam, explicit_subnet)


def test_container_mac_is_the_neutron_ports_unless_asked(env: DockerEnv, neutron: Neutron) -> None:
    seed_mac(env, neutron)
