"""Ownership of a Neutron network that Docker networks on two hosts share, on simulated hosts.

The main host makes a network with Kuryr's IPAM; h2 adopts it by name, as a second Docker host
does since Docker 23 has no cluster store. ``docker network rm`` on one host leaves the
Neutron network to the other, and the last one out removes it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from tests.e2e.helpers import Neutron, run, settle, wait_for
from tests.e2e.multihost import Container, Host, HostsEnv, random_v4

pytestmark = pytest.mark.stack

KURYR = Path(sys.executable).with_name("kuryr")
STACK_CONFIG = "/var/lib/kuryr-stack/kuryr.conf"
SLEEP = ("sleep", "3600")


@pytest.fixture
def own_env() -> Iterator[HostsEnv]:
    env = HostsEnv()
    env.prefix = env.prefix.replace("mh-", "own-")
    try:
        yield env
    finally:
        env.close()


@dataclass
class Shared:
    """One Neutron network, a Docker network of one name on the main host and on h2, and a
    container on each."""

    neutron_id: str
    name: str
    main_id: str
    main_container: Container
    h2_container: Container
    main_subnets: set[str]
    h2_subnets: set[str]


def share(env: HostsEnv, hosts: list[Host], neutron: Neutron, one_subnet: bool) -> Shared:
    """The main host makes the network; h2 adopts it by name, with the main host's subnet
    (``one_subnet``: the README's recipe) or one of its own from the default pool."""
    main, h2 = hosts[0], hosts[1]
    name = env.name("net")
    adopt: tuple[str, ...] = ()
    if one_subnet:
        cidr = random_v4("10.71")
        subnet = ("--subnet", cidr, "--gateway", cidr.replace("0/24", "1"))
        env.network(main, name, *subnet)
        env.defer(lambda: delete_kuryr_pool(neutron, cidr))
        adopt = (*subnet, "--ipam-opt", f"neutron.subnet.name={naming.subnet_name(cidr)}")
    else:
        env.network(main, name)
    main_id = main.docker("network", "inspect", "-f", "{{.Id}}", name)
    [made] = neutron.find("networks", tags=naming.id_tag_filter(main_id))
    assert made["description"] == naming.creator_description(main.chassis)
    main_subnets = set(made["subnets"])
    env.network(h2, name, *adopt, "-o", f"neutron.net.name={made['name']}")
    h2_id = h2.docker("network", "inspect", "-f", "{{.Id}}", name)
    main_container = env.container(main, name, cmd=SLEEP)
    h2_container = env.container(h2, name, cmd=SLEEP)

    shared = neutron.show("networks", made["id"])
    assert shared is not None
    # h2 put no tag on the network: the first Docker network's tags are its only claim tags.
    assert list(naming.tag_claims(shared["tags"])) == [main_id[:32]], shared["tags"]
    [anchor] = neutron.find("ports", device_id=h2_id)
    assert anchor["device_owner"] == naming.ANCHOR_OWNER
    assert anchor["binding:host_id"] == h2.chassis and anchor["network_id"] == made["id"]
    h2_subnets = set(shared["subnets"]) - main_subnets
    if one_subnet:
        assert h2_subnets == set(), "h2 made a subnet beside the one it was given"
        tags = [f"{naming.TAG_SUBNET_USED}:{s}" for s in main_subnets]
    else:
        assert len(h2_subnets) == 1, shared["subnets"]
        tags = [f"{naming.TAG_SUBNET_MADE}:{s}" for s in h2_subnets]
    assert anchor["tags"] == tags
    return Shared(made["id"], name, main_id, main_container, h2_container, main_subnets, h2_subnets)


def delete_kuryr_pool(neutron: Neutron, cidr: str) -> None:
    """A failed run leaves no kuryrPool-<cidr> (the last one out deletes it otherwise)."""
    for pool in neutron.find("subnetpools", name=naming.subnetpool_name(cidr)):
        if not neutron.find("subnets", subnetpool_id=pool["id"]):
            neutron.delete("subnetpools", pool["id"])


def subnets_of(neutron: Neutron, network_id: str) -> set[str]:
    return {s["id"] for s in neutron.find("subnets", network_id=network_id)}


def kuryr_ports_of(neutron: Neutron, network_id: str, host: str) -> list[dict[str, Any]]:
    ports = neutron.find("ports", network_id=network_id, **{"binding:host_id": host})
    return [p for p in ports if p["device_owner"] in (naming.DEVICE_OWNER, naming.ANCHOR_OWNER)]


def test_rm_on_h2_keeps_the_network_for_the_main_host(
    own_env: HostsEnv, sim_hosts: list[Host], neutron: Neutron
) -> None:
    main, h2 = sim_hosts[0], sim_hosts[1]
    shared = share(own_env, sim_hosts, neutron, one_subnet=True)
    main_ip = shared.main_container.address(shared.name, 4)
    # One subnet on both hosts: the containers reach each other across the hosts.
    assert shared.h2_container.pings(main_ip), f"h2 cannot reach {main_ip}"

    own_env.remove_container(shared.h2_container)
    h2.remove_network(shared.name)
    wait_for(
        lambda: not kuryr_ports_of(neutron, shared.neutron_id, h2.chassis) or None,
        "h2's ports and anchor to go",
    )
    # The subnet h2 shared is the main host's: it stays, and so does the network.
    assert subnets_of(neutron, shared.neutron_id) == shared.main_subnets
    kept = neutron.show("networks", shared.neutron_id)
    assert kept is not None, "h2's docker network rm deleted the main host's network"
    assert list(naming.tag_claims(kept["tags"])) == [shared.main_id[:32]]
    # The main host's container is untouched and a new one joins it.
    second = own_env.container(main, shared.name, cmd=SLEEP)
    assert second.pings(main_ip)

    own_env.remove_container(second)
    own_env.remove_container(shared.main_container)
    main.remove_network(shared.name)
    neutron.wait_gone("networks", shared.neutron_id)


def test_the_adopting_host_is_the_last_one_out(
    own_env: HostsEnv, sim_hosts: list[Host], neutron: Neutron
) -> None:
    main, h2 = sim_hosts[0], sim_hosts[1]
    shared = share(own_env, sim_hosts, neutron, one_subnet=False)

    own_env.remove_container(shared.main_container)
    main.remove_network(shared.name)
    left = settle(lambda: subnets_of(neutron, shared.neutron_id), shared.h2_subnets)
    assert left == shared.h2_subnets, "the main host's subnet was not removed, or h2's was"
    kept = neutron.show("networks", shared.neutron_id)
    assert kept is not None, "the main host's docker network rm deleted h2's network"
    assert naming.tag_claims(kept["tags"]) == {} and naming.TAG_MADE_NET in kept["tags"]
    status = run([str(KURYR), "--config-file", STACK_CONFIG, "status", "--hosts", "--json"])
    on_h2 = json.loads(status.stdout)[h2.chassis][shared.neutron_id]
    assert on_h2["anchors"] == 1 and on_h2["in_use"] == 1, on_h2

    own_env.remove_container(shared.h2_container)
    h2.remove_network(shared.name)
    neutron.wait_gone("networks", shared.neutron_id)
