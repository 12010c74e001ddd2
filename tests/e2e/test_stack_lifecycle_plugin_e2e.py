"""End to end on the managed plugin: the seed scenario, and a dockerd restart with the plugin
enabled.

Disruptive (the shared stack runs Kuryr as the managed plugin while these run), so the name
puts it with the lifecycle tests, after every other test. The stack goes to the plugin once
for the whole module (one build: tests/integration/test_stack_lifecycle_plugin.py, later in
the run, finds it cached) and always back to the bare daemon at the end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from kuryr.stack import lifecycle, managed
from kuryr.stack.docker import Docker
from kuryr.stack.layout import Layout
from tests.conftest import StackFacts
from tests.e2e.helpers import (
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    eth0,
    ping,
    port_ips,
    wait_for,
)
from tests.e2e.plugin_startup import LAST_DIAL, SocketWatch
from tests.e2e.scenario import each_ipam, each_subnet, seed_mac, seed_network

pytestmark = pytest.mark.stack

# Docker 20.10 resolves a managed plugin's drivers only by the tagged name.
DRIVER = f"{managed.PLUGIN}:latest"


@pytest.fixture(scope="module")
def on_plugin(stack: StackFacts) -> Iterator[Layout]:
    """The stack on the managed plugin for the module, on the bare daemon again after it."""
    try:
        report = lifecycle.up(stack.layout, plugin=True)
        kuryr = next(h for h in report if h.name == "kuryr")
        assert f"managed plugin {DRIVER}" in kuryr.detail, kuryr.detail
        yield stack.layout
    finally:
        lifecycle.up(stack.layout, plugin=False)


@pytest.fixture
def env(on_plugin: Layout) -> Iterator[DockerEnv]:
    """The e2e resources, on networks of the plugin's drivers."""
    resources = DockerEnv(DRIVER)
    resources.prefix = f"plg-{resources.prefix}"
    try:
        yield resources
    finally:
        resources.close()


@each_subnet
@each_ipam
def test_seed_scenario_on_the_plugin(
    env: DockerEnv, neutron: Neutron, ipam: str, explicit_subnet: bool
) -> None:
    seed_network(env, neutron, ipam, explicit_subnet)


def test_seed_mac_on_the_plugin(env: DockerEnv, neutron: Neutron) -> None:
    seed_mac(env, neutron)


def running(name: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", name) == "true"


def test_dockerd_restart_brings_the_containers_back_networked(
    on_plugin: Layout, env: DockerEnv, neutron: Neutron
) -> None:
    """Containers with a restart policy, restored by dockerd once the plugin it started first
    answers: each on a Neutron port of the network again, its eth0 with the port's MAC and
    address, and they reach each other. (The address may change: dockerd asks for any address
    when it restores a container without a static one, as on its own bridge.)"""
    net = env.network(*env.kuryr_ipam())
    network_id = docker_network_id(net)
    neutron_net = neutron.network_of_docker(network_id)
    names = [env.container(net, "--restart", "always") for _ in range(2)]
    plugin = managed.KuryrPlugin(on_plugin)
    found = plugin.inspect()
    assert found is not None and found["Enabled"], found

    dockerd = Docker(on_plugin)
    dockerd.stop()
    watch = SocketWatch(found["Id"], plugin.socket(found["Id"]))
    watch.start()
    dockerd.start()
    startup = watch.result()
    print(startup.line(), file=sys.stderr)
    assert startup.plugin_seconds < LAST_DIAL, startup.line()

    ok, detail = plugin.check()
    assert ok, detail
    assert docker_network_id(net) == network_id
    wait_for(lambda: all(running(n) for n in names), "the containers to be running again")
    for name in names:
        ep = endpoint(name, net)
        port = neutron.port_of_endpoint(ep.endpoint_id)
        assert port["network_id"] == neutron_net["id"]
        assert port_ips(port) == {ep.ipv4}
        seen = eth0(name)
        assert seen.mac == port["mac_address"]
        assert seen.addresses == {ep.ipv4}
        neutron.wait_active(port["id"])
    a, b = (endpoint(n, net) for n in names)
    for src, dst in ((a, b), (b, a)):
        result = ping(src.container, dst.ipv4)
        assert result.returncode == 0, f"{src.container} -> {dst.ipv4}: {result.stdout}"
    # A plugin dockerd gave up on would be disabled.
    assert json.loads(docker("plugin", "inspect", managed.PLUGIN))[0]["Enabled"]

    for name in names:
        env.remove_container(name)
    env.remove_network(net)
    neutron.wait_gone("networks", neutron_net["id"])
