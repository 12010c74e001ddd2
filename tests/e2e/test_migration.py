"""Migration between kuryr-libnetwork 18.0.0 (PyPI) and Kuryr under the one driver name
``kuryr``, both ways, with running containers, as an operator switches a host.

The operator's switch: stop dockerd (its containers stop; the daemon serving them releases
their endpoints), stop the old daemon and register the new one (Kuryr: its socket
``/run/docker/plugins/kuryr.sock``; kuryr-libnetwork: a spec file with its TCP URL, since the
socket wins dockerd's lookup), start dockerd (it resolves ``kuryr`` afresh; it caches a
plugin's address until it restarts). Containers with a restart policy come back on the
networks the other daemon made, new containers join them, and ``docker rm`` / ``docker
network rm`` under the new daemon remove what the old one made in Neutron and nothing else.

Disruptive: stops the stack's Kuryr daemon and restarts dockerd three times; the ``switch``
fixture always ends with Kuryr on its socket, no spec file and dockerd restarted.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import pytest

from bench.kuryrlib import Reference
from kuryr import config
from kuryr.backends.unixhttp import json_call
from kuryr.domain.ports.port import Port
from kuryr.ops import admin_api
from kuryr.stack import lifecycle
from kuryr.stack.daemon import KuryrDaemon
from kuryr.stack.docker import Docker
from kuryr.stack.layout import NEUTRON_URL
from tests.conftest import StackFacts, bring_up
from tests.e2e.helpers import (
    DOCKER,
    IMAGE,
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    ping_all,
    run,
    wait_for,
)

pytestmark = pytest.mark.stack

# kuryr-libnetwork serving the name ``kuryr``; not the bench's ``kuryrlib`` address.
LIBNETWORK_URL = "http://127.0.0.1:23762"


class Switch:
    """Which daemon serves the driver name ``kuryr``, switched the operator's way. Used under
    the stack's lock: other sessions would otherwise start the stopped Kuryr daemon (whose
    socket wins dockerd's lookup) or a second dockerd during a switch."""

    def __init__(self, stack: StackFacts) -> None:
        self.dockerd = Docker(stack.layout)
        self.kuryr = KuryrDaemon(stack.layout)
        self.libnetwork = Reference.default().as_driver("kuryr", LIBNETWORK_URL)

    def to_libnetwork(self, neutron: Neutron, handed: Sequence[Made] = ()) -> None:
        self.libnetwork.install()
        self.libnetwork.ensure_pools()
        self.dockerd.stop()
        self._drain(neutron, handed)
        self.kuryr.stop()
        self.libnetwork.start(NEUTRON_URL)
        self.dockerd.start()

    def _drain(self, neutron: Neutron, handed: Sequence[Made]) -> None:
        """The free pool ports of the networks handed over go first: kuryr-libnetwork would
        find ports it never made there (and could not delete the networks). An operator
        drains every pool (``kuryr pools drain``); here only the test's networks, since
        other sessions' pools would take minutes."""
        admin = admin_api.socket_path(config.load(self.kuryr.config).state_dir)
        for made in handed:
            for subnet in made.subnets:
                json_call(admin, "POST", admin_api.POOLS_DRAIN, {"subnet_id": subnet})

        def drained() -> bool:
            return not any(
                Port.from_neutron(port).in_pool
                for made in handed
                for port in neutron.find("ports", network_id=made.network)
            )

        wait_for(drained, "Kuryr's pool ports on the handed-over networks to be deleted")

    def to_kuryr(self) -> None:
        """Also the restore: whatever state a failure left, Kuryr serves afterwards."""
        self.dockerd.stop()
        self.libnetwork.stop()
        self.libnetwork.unregister()
        self.kuryr.start()
        self.dockerd.start()


@pytest.fixture
def switch(stack: StackFacts) -> Iterator[Switch]:
    sw = Switch(stack)
    try:
        with lifecycle.locked(stack.layout):
            try:
                yield sw
            finally:
                sw.to_kuryr()
    finally:
        bring_up(stack.layout)
    assert not sw.libnetwork.spec_file.exists()
    assert sw.libnetwork.pid() is None


@dataclass
class Made:
    """One Docker network and what its daemon made for it in Neutron."""

    name: str
    network: str = ""
    subnets: set[str] = field(default_factory=set)
    subnetpools: set[str] = field(default_factory=set)  # kuryrPool-* ones (made by the daemon)
    ports: set[str] = field(default_factory=set)


def record(neutron: Neutron, name: str) -> Made:
    made = Made(name)
    made.network = neutron.network_of_docker(docker_network_id(name))["id"]
    for subnet in neutron.find("subnets", network_id=made.network):
        made.subnets.add(subnet["id"])
        # Its own pool, or the pool it serves from outside (a marker, a slice): by its tag.
        for pool_id in {subnet["subnetpool_id"], *subnet["tags"]} - {None}:
            pool = neutron.show("subnetpools", pool_id)
            if pool and pool["name"].startswith("kuryrPool-"):
                made.subnetpools.add(pool["id"])
    made.ports = {pt["id"] for pt in neutron.find("ports", network_id=made.network)}
    return made


def assert_removed(neutron: Neutron, made: Made) -> None:
    """Everything is gone; Kuryr may finish a removal in the background (its DeleteNetwork
    says so, dockerd forgets the network all the same)."""
    neutron.wait_gone("networks", made.network)
    for subnet in made.subnets:
        neutron.wait_gone("subnets", subnet)
    for pool in made.subnetpools:
        neutron.wait_gone("subnetpools", pool)
    for port in made.ports:
        neutron.wait_gone("ports", port)


def failed_start(neutron: Neutron, network: str, ip: str) -> str:
    """kuryr-libnetwork 18 cannot start a container on a Docker-IPAM network: its
    CreateEndpoint makes the port without the endpoint's tags, so its Join (and the
    DeleteEndpoint of the rollback) cannot find it. Returns the port the failure leaves."""
    name = f"{network}-failed"
    attempt = run(
        [DOCKER, "run", "-d", "--name", name, "--net", network, "--ip", ip, IMAGE, "true"],
        check=False,
    )
    docker("rm", "-f", name, check=False)
    assert attempt.returncode != 0 and "The port doesn't exist" in attempt.stderr, attempt
    on_network = neutron.network_of_docker(docker_network_id(network))["id"]
    [port] = neutron.find("ports", network_id=on_network, fixed_ips=f"ip_address={ip}")
    assert Port.from_neutron(port).released_by_libnetwork, port
    return str(port["id"])


def running(container: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", container) == "true"


def assert_connected(a: str, b: str, network: str) -> None:
    """Both containers answer each other on ``network``."""
    ea, eb = endpoint(a, network), endpoint(b, network)
    there, back = ping_all([(a, eb.ipv4), (b, ea.ipv4)])
    assert there.returncode == 0, f"{a} cannot reach {b} ({eb.ipv4}) on {network}"
    assert back.returncode == 0, f"{b} cannot reach {a} ({ea.ipv4}) on {network}"


@dataclass
class Sentinel:
    """Neutron resources of the same shape and CIDR the daemons must leave alone."""

    network: str
    subnet: str
    port: str
    operator_pool: str


@pytest.fixture
def sentinel(neutron: Neutron) -> Iterator[Sentinel]:
    suffix = secrets.token_hex(3)
    net = neutron.create("networks", name=f"mig-sentinel-{suffix}")
    subnet = neutron.create(
        "subnets", network_id=net["id"], ip_version=4, cidr="10.62.1.0/24", enable_dhcp=False
    )
    port = neutron.create(
        "ports",
        network_id=net["id"],
        fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.62.1.10"}],
    )
    # The pool an operator gives kuryr-libnetwork for a network on Docker's IPAM (it makes no
    # subnetpool of its own there and refuses a --subnet without one).
    pool = neutron.create(
        "subnetpools", name=f"mig-pool-{suffix}", prefixes=["10.62.2.0/24"], default_prefixlen=24
    )
    try:
        yield Sentinel(net["id"], subnet["id"], port["id"], pool["id"])
    finally:
        neutron.delete("ports", port["id"])
        neutron.delete("networks", net["id"])
        # A network removal Kuryr finishes in the background may still hold a subnet of it.
        wait_for(
            lambda: not neutron.find("subnets", subnetpool_id=pool["id"]),
            f"no subnet left in subnetpool {pool['id']}",
        )
        neutron.delete("subnetpools", pool["id"])


def assert_untouched(neutron: Neutron, sentinel: Sentinel) -> None:
    port = neutron.show("ports", sentinel.port)
    assert port is not None and port["device_id"] == "" and port["tags"] == []
    assert neutron.show("subnets", sentinel.subnet) is not None
    assert neutron.show("subnetpools", sentinel.operator_pool) is not None
    neutron.default_pools()


def test_migration_both_ways(
    stack: StackFacts,
    neutron: Neutron,
    sentinel: Sentinel,
    rel_env: DockerEnv,
    switch: Switch,
) -> None:
    # Fixtures in this order: the switch back to Kuryr first, then the test's Docker
    # resources, then the sentinel (whose operator pool a removed network may still use).
    env = rel_env
    # Running through a switch: dockerd stops them, and ``sleep`` as PID 1 ignores SIGTERM.
    quick = ("--stop-timeout", "1")
    always = ("--restart", "always", *quick)
    kuryr_ipam = ("--ipam-driver", "kuryr")

    # kuryr-libnetwork makes networks on both IPAMs, with and without --ip-range, and runs a
    # container where it can.
    switch.to_libnetwork(neutron)
    lib_pooled = [
        env.network(*kuryr_ipam, "--subnet", "10.62.1.0/24", "--gateway", "10.62.1.1"),
        env.network(
            *kuryr_ipam,
            *("--subnet", "10.62.64.0/18", "--ip-range", "10.62.65.0/24"),
            *("--gateway", "10.62.65.1"),
        ),
    ]
    lib_docker_ipam = env.network(
        *("-o", f"neutron.pool.uuid={sentinel.operator_pool}"),
        *("--subnet", "10.62.2.0/24", "--gateway", "10.62.2.1"),
    )
    first = {net: env.container(net, *always) for net in lib_pooled}
    leaked = failed_start(neutron, lib_docker_ipam, "10.62.2.10")
    lib_made = [record(neutron, net) for net in (*lib_pooled, lib_docker_ipam)]
    assert all(made.subnetpools for made in lib_made[:2]), "kuryr-libnetwork made no kuryrPool"

    # Kuryr takes over: the containers come back, new ones join every network. On the
    # Docker-IPAM network kuryr-libnetwork's subnet has DHCP, whose metadata port holds .2
    # (Docker's next address): containers there are given theirs.
    switch.to_kuryr()
    later = {net: env.container(net) for net in lib_pooled}
    for net in lib_pooled:
        wait_for(partial(running, first[net]), f"{first[net]} running again")
        assert_connected(first[net], later[net], net)
    docker_ipam_pair = (
        env.container(lib_docker_ipam, "--ip", "10.62.2.10"),
        env.container(lib_docker_ipam, "--ip", "10.62.2.11"),
    )
    assert_connected(docker_ipam_pair[0], docker_ipam_pair[1], lib_docker_ipam)
    claimed = neutron.port_of_endpoint(endpoint(docker_ipam_pair[0], lib_docker_ipam).endpoint_id)
    assert claimed["id"] == leaked, "Kuryr did not take the port kuryr-libnetwork left on .10"

    # Kuryr makes the same kinds of networks for the way back, and one from its default pool
    # (its subnet in the shared pool, its PoolID the id of its marker subnetpool).
    ours_pooled = [
        env.network(*kuryr_ipam, "--subnet", "10.62.11.0/24", "--gateway", "10.62.11.1"),
        env.network(
            *kuryr_ipam,
            *("--subnet", "10.62.128.0/18", "--ip-range", "10.62.129.0/24"),
            *("--gateway", "10.62.129.1"),
        ),
        env.network(*kuryr_ipam),
    ]
    ours_docker_ipam = [
        env.network("--subnet", "10.62.12.0/24", "--gateway", "10.62.12.1"),
        env.network("--subnet", "10.62.13.0/24", "--ip-range", "10.62.13.128/25"),
    ]
    ours_first = {net: env.container(net, *always) for net in ours_pooled}
    # Stopped with dockerd and left stopped: kuryr-libnetwork cannot start a container on a
    # Docker-IPAM network (failed_start).
    ours_stopped = env.container(ours_docker_ipam[0], *quick)
    ours_made = [record(neutron, net) for net in (*ours_pooled, *ours_docker_ipam)]
    assert all(made.subnetpools for made in ours_made[:3]), "Kuryr made no kuryrPool"

    # Kuryr removes what kuryr-libnetwork made, and nothing else.
    for container in (*first.values(), *later.values(), *docker_ipam_pair):
        env.remove_container(container)
    for net in (*lib_pooled, lib_docker_ipam):
        env.remove_network(net)
    for made in lib_made:
        assert_removed(neutron, made)
    assert_untouched(neutron, sentinel)

    # kuryr-libnetwork takes over Kuryr's networks: the containers come back, new ones join,
    # and kuryr-libnetwork removes all of it.
    switch.to_libnetwork(neutron, ours_made)
    ours_later = {net: env.container(net) for net in ours_pooled}
    for net in ours_pooled:
        wait_for(partial(running, ours_first[net]), f"{ours_first[net]} running again")
        assert_connected(ours_first[net], ours_later[net], net)
    for container in (*ours_first.values(), *ours_later.values(), ours_stopped):
        env.remove_container(container)
    # kuryr-libnetwork removes them before it answers; Kuryr's daemon (and its admin socket,
    # which the default wait asks) is not running meanwhile.
    for net in (*ours_pooled, *ours_docker_ipam):
        env.remove_network(net, wait=False)
    for made in ours_made:
        assert_removed(neutron, made)
    assert_untouched(neutron, sentinel)
