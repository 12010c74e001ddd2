"""``docker network rm`` answers once the daemon has journaled the removal; the removal from
Neutron (pool ports, subnets, subnetpools, the network) goes on in the background
(kuryr.domain.removals). Once the daemon reports it done, nothing of the network is left in
Neutron; and a network created again at once, same name and CIDR, works: what collides with
the removal under way waits for it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import (
    PORT_OWNER,
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    ping,
    wait_for,
)
from tests.e2e.scenario import free_subnet
from tests.removals_wait import stack_admin_socket, wait_removed

pytestmark = pytest.mark.stack


def leftovers(neutron: Neutron, made: dict[str, Any]) -> list[str]:
    """What of a Docker network ``made`` describes Neutron still holds."""
    left = [f"network {made['network']}"] if neutron.show("networks", made["network"]) else []
    left += [f"port {p['id']}" for p in neutron.find("ports", network_id=made["network"])]
    left += [f"subnet {s}" for s in made["subnets"] if neutron.show("subnets", s)]
    left += [f"subnetpool {s}" for s in made["subnetpools"] if neutron.show("subnetpools", s)]
    return left


def made_for(neutron: Neutron, net: str) -> dict[str, Any]:
    network = neutron.network_of_docker(docker_network_id(net))
    subnets = neutron.find("subnets", network_id=network["id"])
    return {
        "network": network["id"],
        "subnets": [s["id"] for s in subnets],
        "subnetpools": [s["subnetpool_id"] for s in subnets if own_pool(neutron, s)],
    }


def own_pool(neutron: Neutron, subnet: dict[str, Any]) -> bool:
    """The subnet is in a ``kuryrPool-*`` subnetpool (not a default pool every network shares)."""
    pool = neutron.show("subnetpools", subnet["subnetpool_id"]) if subnet["subnetpool_id"] else None
    return pool is not None and str(pool["name"]).startswith("kuryrPool-")


def free_ports(neutron: Neutron, network_id: str) -> list[dict[str, Any]] | None:
    """The network's pool ports (Kuryr's, no container on it), once there are some."""
    ports = neutron.find("ports", network_id=network_id, device_owner=PORT_OWNER)
    return ports or None


def test_rm_with_pool_ports_leaves_nothing_in_neutron(env: DockerEnv, neutron: Neutron) -> None:
    # Outside the default pool: Kuryr makes a kuryrPool-<cidr> subnetpool, which goes too.
    cidr = free_subnet(neutron, "10.{}.77.0/24", range(200, 250))
    net = env.network("--ipam-driver", "kuryr", "--subnet", cidr)
    made = made_for(neutron, net)
    assert made["subnetpools"], made
    env.remove_container(env.container(net))
    wait_for(lambda: free_ports(neutron, made["network"]), "the network's pool ports")

    docker_id = env.remove_network(net, wait=False)
    # Docker forgot the network; the daemon lists its removal until Neutron is clean.
    wait_removed(stack_admin_socket(), [docker_id])
    assert leftovers(neutron, made) == []


@pytest.mark.parametrize("ipam", ["kuryr", "docker"])
def test_create_right_after_rm_with_the_same_name_and_cidr_works(
    env: DockerEnv, neutron: Neutron, ipam: str
) -> None:
    args = ("--ipam-driver", "kuryr") if ipam == "kuryr" else ()
    cidr = free_subnet(neutron, "10.{}.78.0/24", range(200, 250))
    name = env.name("net")
    env.network(*args, "--subnet", cidr, name=name)
    first = made_for(neutron, name)
    env.remove_container(env.container(name))  # a pool port back, for the removal to delete

    gone = env.remove_network(name, wait=False)
    env.network(*args, "--subnet", cidr, name=name)
    second = made_for(neutron, name)
    assert second["network"] != first["network"]
    peers = [env.container(name), env.container(name)]
    address = endpoint(peers[1], name).ipv4
    assert address is not None and address.startswith(cidr.rsplit(".", 2)[0])
    assert ping(peers[0], address).returncode == 0

    wait_removed(stack_admin_socket(), [gone])
    assert leftovers(neutron, first) == []
    for peer in peers:
        env.remove_container(peer)
    env.remove_network(name)
    assert leftovers(neutron, second) == []
    assert name not in docker("network", "ls", "--format", "{{.Name}}").split()
