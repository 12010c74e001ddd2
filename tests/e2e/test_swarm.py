"""Swarm on Kuryr (issue 14 part 2): a swarm-scoped network on the managed plugin across three
simulated hosts, and a dnsrr service on it.

The manager's Kuryr makes the Neutron network and subnet (AllocateNetwork, through Kuryr's
IPAM) and holds each task's address; every node that runs a task adopts that network and the
address the manager chose; the tasks reach each other by IP and by the service's name (Docker's
DNS); scaling down, ``docker service rm`` and ``docker network rm`` leave nothing in Neutron."""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kuryr import naming
from kuryr.stack.simplugin import DRIVER
from tests.conftest import StackFacts
from tests.e2e.helpers import IMAGE, Neutron, side_by_side, wait_for
from tests.e2e.multihost import Host
from tests.e2e.swarm import Swarm, swarm_of

pytestmark = pytest.mark.usefixtures("sim_hosts")

REPLICAS = 3
SETTLE = 90.0


@pytest.fixture
def swarm(stack: StackFacts) -> Iterator[Swarm]:
    with swarm_of(stack.layout, stack.chassis_hostname) as made:
        yield made


def tasks(swarm: Swarm, service: str) -> list[dict[str, Any]]:
    """The service's tasks that run (the manager's view)."""
    ids = swarm.manager.docker("service", "ps", "-q", "--filter", "desired-state=running", service)
    found = [json.loads(swarm.manager.docker("inspect", t))[0] for t in ids.split()]
    return [t for t in found if t["Status"]["State"] == "running"]


def allocated(manager: Host, net: str) -> dict[str, str] | None:
    """The network's driver options once the manager allocated it (after create returns)."""
    options = json.loads(manager.docker("network", "inspect", "-f", "{{json .Options}}", net))
    return options if options and "neutron.net.uuid" in options else None


def all_running(swarm: Swarm, service: str) -> list[dict[str, Any]] | None:
    found = tasks(swarm, service)
    return found if len(found) == REPLICAS else None


def task_node(swarm: Swarm, task: dict[str, Any]) -> Host:
    name = swarm.manager.docker(
        "node", "inspect", "-f", "{{.Description.Hostname}}", task["NodeID"]
    )
    return swarm.node(name)


def task_address(task: dict[str, Any], network_id: str) -> str:
    """The address the manager allocated the task on the network."""
    [attachment] = [a for a in task["NetworksAttachments"] if a["Network"]["ID"] == network_id]
    [address] = attachment["Addresses"]
    return str(address).split("/")[0]


def container_address(node: Host, container: str, network: str) -> tuple[str, str]:
    nets = json.loads(node.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container))
    return str(nets[network]["IPAddress"]), str(nets[network]["MacAddress"])


def swarm_ports(neutron: Neutron, network_id: str) -> list[dict[str, Any]]:
    return [
        p
        for p in neutron.find("ports", network_id=network_id)
        if naming.TAG_SWARM_ADDRESS in (p.get("tags") or [])
    ]


def test_dnsrr_service_across_three_hosts(swarm: Swarm, neutron: Neutron) -> None:
    manager = swarm.manager
    net = f"sw-{secrets.token_hex(3)}"
    service = f"{net}-svc"
    started = time.monotonic()
    swarm_id = manager.docker(
        "network",
        "create",
        "-d",
        DRIVER,
        "--ipam-driver",
        DRIVER,
        "--scope",
        "swarm",
        "--attachable",
        net,
    )
    try:
        # AllocateNetwork on the manager: the Neutron network and a subnet of Kuryr's pool,
        # whose uuids the swarm hands every node as the network's driver options.
        options = wait_for(
            lambda: allocated(manager, net), f"the swarm's allocation of {net}", SETTLE
        )
        neutron_net = neutron.show("networks", options["neutron.net.uuid"])
        assert neutron_net is not None
        assert neutron_net["name"] == naming.network_name(swarm_id)
        assert naming.id_tags(naming.swarm_claim(swarm_id))[0] in neutron_net["tags"]
        assert neutron_net["description"] == naming.creator_description(manager.name)
        subnet = neutron.show("subnets", options["neutron.subnet.uuid"])
        assert subnet is not None and subnet["network_id"] == neutron_net["id"]
        assert naming.TAG_SWARM_SUBNET in subnet["tags"]
        [kuryr_pool] = neutron.find("subnetpools", name="kuryr")
        assert subnet["subnetpool_id"] == kuryr_pool["id"]

        manager.docker(
            "service",
            "create",
            "-d",
            "--name",
            service,
            "--replicas",
            str(REPLICAS),
            "--replicas-max-per-node",
            "1",
            "--endpoint-mode",
            "dnsrr",
            "--stop-grace-period",
            "1s",
            "--network",
            net,
            "--no-resolve-image",
            IMAGE,
            "sleep",
            "3600",
        )
        running = wait_for(
            lambda: all_running(swarm, service), f"{REPLICAS} running tasks of {service}", SETTLE
        )
        up = time.monotonic() - started
        placed: list[tuple[Host, str, str]] = []
        for task in running:
            node = task_node(swarm, task)
            container = task["Status"]["ContainerStatus"]["ContainerID"]
            ip, mac = container_address(node, container, net)
            # The node honoured the address the manager chose, on the Neutron port the manager
            # made for it, now the node's: bound there, with the container's MAC.
            assert ip == task_address(task, swarm_id)
            [port] = neutron.find(
                "ports", network_id=neutron_net["id"], **{"fixed_ips": f"ip_address={ip}"}
            )
            assert naming.TAG_SWARM_ADDRESS in port["tags"]
            assert (port["binding:host_id"], port["mac_address"]) == (node.chassis, mac)
            placed.append((node, container, ip))
        assert {node.name for node, _, _ in placed} == {n.name for n in swarm.nodes}
        # Each node adopted the network: one anchor per node, no network or subnet of its own.
        anchors = neutron.find(
            "ports", network_id=neutron_net["id"], device_owner=naming.ANCHOR_OWNER
        )
        assert sorted(a["binding:host_id"] for a in anchors) == sorted(
            n.chassis for n in swarm.nodes
        )
        assert [s["id"] for s in neutron.find("subnets", network_id=neutron_net["id"])] == [
            subnet["id"]
        ]

        addresses = sorted(ip for _, _, ip in placed)

        def reaches_every_task(node: Host, container: str, ip: str) -> None:
            for other in addresses:
                if other != ip:
                    node.docker("exec", container, "ping", "-c", "1", "-W", "3", other)
            # Docker's DNS: the service's name is every task's address (dnsrr).
            said = node.docker("exec", container, "nslookup", service, "127.0.0.11")
            assert sorted(a for a in addresses if f"Address: {a}" in said) == addresses, said
            node.docker("exec", container, "ping", "-c", "1", "-W", "3", service)
            node.docker("exec", container, "ping", "-c", "1", "-W", "3", f"tasks.{service}")

        # The nodes' checks side by side: a failure in any is raised here all the same.
        side_by_side(*(functools.partial(reaches_every_task, *task) for task in placed))

        manager.docker("service", "scale", "-d", f"{service}=1")
        wait_for(
            lambda: (
                len(tasks(swarm, service)) == 1
                and len(swarm_ports(neutron, neutron_net["id"])) == 1
            ),
            "the service scaled down to one task, its other addresses released in Neutron",
            SETTLE,
        )
        [left] = tasks(swarm, service)
        [port] = swarm_ports(neutron, neutron_net["id"])
        assert port["fixed_ips"][0]["ip_address"] == task_address(left, swarm_id)

        manager.docker("service", "rm", service)
        manager.docker("network", "rm", net)
        # The nodes' removals and the ReleasePool cleanups that wait for them run in the
        # background once DeleteNetwork has answered (kuryr.domain.removals).
        marker = naming.subnetpool_name(subnet["cidr"])
        wait_for(
            lambda: (
                neutron.show("networks", neutron_net["id"]) is None
                and not neutron.find("subnetpools", name=marker)
            ),
            "the Neutron network and its marker subnetpool gone after docker service rm and "
            "docker network rm",
            SETTLE,
        )
        print(
            f"\nswarm: plugins on 3 hosts in {swarm.plugin_seconds:.1f} s, swarm in "
            f"{swarm.swarm_seconds:.1f} s, {REPLICAS} tasks up {up:.1f} s after network create, "
            f"all gone {time.monotonic() - started:.1f} s after it"
        )
    finally:
        manager.docker("service", "rm", service, check=False)
        manager.docker("network", "rm", net, check=False)
    assert not neutron.find("ports", network_id=neutron_net["id"])
    assert not neutron.find("subnets", network_id=neutron_net["id"])
    cidr = subnet["cidr"]
    assert not neutron.find("subnetpools", name=naming.subnetpool_name(cidr))
