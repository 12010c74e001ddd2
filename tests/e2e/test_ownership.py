"""Ownership of a Neutron network that Docker networks on two hosts share, on simulated hosts.

The main host makes a network with Kuryr's IPAM (its subnet from the default pool); h2 adopts
it by name with a subnet of its own, as a second Docker host does since Docker 23 has no
cluster store. ``docker network rm`` on one host leaves the Neutron network to the other, and
the last one out removes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from tests.e2e.helpers import (
    DOCKER,
    IMAGE,
    DockerEnv,
    Neutron,
    chassis_hostname,
    docker_network_id,
    endpoint,
    ping,
    run,
    settle,
    wait_for,
)
from tests.e2e.scenario import free_subnet

pytestmark = pytest.mark.stack

KURYR = Path(sys.executable).with_name("kuryr")
STACK_CONFIG = "/var/lib/kuryr-stack/kuryr.conf"


@dataclass
class OtherHost:
    """A simulated host's dockerd, and what a test made there (removed at teardown)."""

    name: str
    docker_host: str
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([DOCKER, "-H", self.docker_host, *args], check=check)

    def network(self, name: str, *args: str) -> None:
        self.networks.append(name)
        self.docker("network", "create", "-d", "kuryr", *args, name)

    def container(self, name: str, network: str) -> None:
        self.containers.append(name)
        self.docker("run", "-d", "--name", name, "--net", network, IMAGE, "sleep", "3600")

    def remove_container(self, name: str) -> None:
        self.docker("rm", "-f", name)
        self.containers.remove(name)

    def remove_network(self, name: str) -> None:
        self.docker("network", "rm", name)
        self.networks.remove(name)

    def close(self) -> None:
        for name in self.containers:
            self.docker("rm", "-f", name, check=False)
        for name in self.networks:
            self.docker("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def simulated_hosts() -> dict[str, str]:
    """Host name -> its dockerd (``docker_host``), after ``kuryr stack up --hosts 3`` (which
    brings up what is missing and restarts a host's daemon whose code is older than this
    tree's, as the ``stack`` fixture does for the main host's)."""
    up = run([str(KURYR), "stack", "up", "--hosts", "3"], check=False, timeout=600)
    if up.returncode != 0:
        pytest.fail(f"kuryr stack up --hosts 3: {up.stderr or up.stdout}", pytrace=False)
    hosts = json.loads(run([str(KURYR), "stack", "hosts", "--json"]).stdout)
    return {h["name"]: h["docker_host"] for h in hosts}


@pytest.fixture
def h2(simulated_hosts: dict[str, str]) -> Iterator[OtherHost]:
    host = OtherHost("h2", simulated_hosts["h2"])
    try:
        yield host
    finally:
        host.close()


@dataclass
class Shared:
    """One Neutron network, a Docker network on the main host and one on h2, a container on
    each."""

    neutron_id: str
    name: str
    main_id: str
    h2_id: str
    main_container: str
    h2_container: str
    main_subnets: set[str]
    h2_subnets: set[str]


def share(env: DockerEnv, h2: OtherHost, neutron: Neutron, one_subnet: bool) -> Shared:
    """The main host makes the network; h2 adopts it by name, with the main host's subnet
    (``one_subnet``: the README's recipe) or one of its own from the default pool."""
    adopt: tuple[str, ...] = ()
    if one_subnet:
        cidr = free_subnet(neutron, "10.71.{}.0/24", range(1, 255))
        subnet = ("--subnet", cidr, "--gateway", cidr.replace("0/24", "1"))
        net = env.network("--ipam-driver", "kuryr", *subnet)
        adopt = (*subnet, "--ipam-opt", f"neutron.subnet.name={naming.subnet_name(cidr)}")
    else:
        net = env.network("--ipam-driver", "kuryr")
    main_id = docker_network_id(net)
    made = neutron.network_of_docker(main_id)
    assert made["description"] == naming.creator_description(chassis_hostname())
    main_subnets = set(made["subnets"])
    h2.network(net, "--ipam-driver", "kuryr", *adopt, "-o", f"neutron.net.name={made['name']}")
    h2_id = h2.docker("network", "inspect", "-f", "{{.Id}}", net).stdout.strip()
    main_container = env.container(net)
    h2_container = f"{env.prefix}-h2c"
    h2.container(h2_container, net)

    shared = neutron.show("networks", made["id"])
    assert shared is not None
    # h2 put no tag on the network: the first Docker network's tags are its only claim tags.
    assert list(naming.tag_claims(shared["tags"])) == [main_id[:32]], shared["tags"]
    [anchor] = neutron.find("ports", device_id=h2_id)
    assert anchor["device_owner"] == naming.ANCHOR_OWNER
    assert anchor["binding:host_id"] == "h2" and anchor["network_id"] == made["id"]
    h2_subnets = set(shared["subnets"]) - main_subnets
    if one_subnet:
        assert h2_subnets == set(), "h2 made a subnet beside the one it was given"
        tags = [f"{naming.TAG_SUBNET_USED}:{s}" for s in main_subnets]
    else:
        assert len(h2_subnets) == 1, shared["subnets"]
        tags = [f"{naming.TAG_SUBNET_MADE}:{s}" for s in h2_subnets]
    assert anchor["tags"] == tags
    return Shared(
        made["id"], net, main_id, h2_id, main_container, h2_container, main_subnets, h2_subnets
    )


def subnets_of(neutron: Neutron, network_id: str) -> set[str]:
    return {s["id"] for s in neutron.find("subnets", network_id=network_id)}


def kuryr_ports_of(neutron: Neutron, network_id: str, host: str) -> list[dict[str, Any]]:
    ports = neutron.find("ports", network_id=network_id, **{"binding:host_id": host})
    return [p for p in ports if p["device_owner"] in (naming.DEVICE_OWNER, naming.ANCHOR_OWNER)]


def test_rm_on_h2_keeps_the_network_for_the_main_host(
    env: DockerEnv, h2: OtherHost, neutron: Neutron
) -> None:
    shared = share(env, h2, neutron, one_subnet=True)
    main_ip = endpoint(shared.main_container, shared.name).ipv4
    # One subnet on both hosts: the containers reach each other across the hosts.
    ping_main = ("exec", shared.h2_container, "ping", "-c", "1", "-W", "5", main_ip)
    across = h2.docker(*ping_main, check=False)
    assert across.returncode == 0, across.stdout + across.stderr

    h2.remove_container(shared.h2_container)
    h2.remove_network(shared.name)
    wait_for(
        lambda: not kuryr_ports_of(neutron, shared.neutron_id, "h2") or None,
        "h2's ports and anchor to go",
    )
    # The subnet h2 shared is the main host's: it stays.
    assert subnets_of(neutron, shared.neutron_id) == shared.main_subnets
    kept = neutron.show("networks", shared.neutron_id)
    assert kept is not None, "h2's docker network rm deleted the main host's network"
    assert list(naming.tag_claims(kept["tags"])) == [shared.main_id[:32]]
    # The main host's container is untouched and still on the network.
    second = env.container(shared.name)
    assert ping(second, main_ip).returncode == 0

    env.remove_container(second)
    env.remove_container(shared.main_container)
    env.remove_network(shared.name)
    neutron.wait_gone("networks", shared.neutron_id)


def test_the_adopting_host_is_the_last_one_out(
    env: DockerEnv, h2: OtherHost, neutron: Neutron
) -> None:
    shared = share(env, h2, neutron, one_subnet=False)

    env.remove_container(shared.main_container)
    env.remove_network(shared.name)
    left = settle(lambda: subnets_of(neutron, shared.neutron_id), shared.h2_subnets)
    assert left == shared.h2_subnets, "the main host's subnet was not removed, or h2's was"
    kept = neutron.show("networks", shared.neutron_id)
    assert kept is not None, "the main host's docker network rm deleted h2's network"
    assert naming.tag_claims(kept["tags"]) == {} and naming.TAG_MADE_NET in kept["tags"]
    status = run([str(KURYR), "--config-file", STACK_CONFIG, "status", "--hosts", "--json"])
    on_h2 = json.loads(status.stdout)["h2"][shared.neutron_id]
    assert on_h2["anchors"] == 1 and on_h2["in_use"] == 1, on_h2

    h2.remove_container(shared.h2_container)
    h2.remove_network(shared.name)
    neutron.wait_gone("networks", shared.neutron_id)
