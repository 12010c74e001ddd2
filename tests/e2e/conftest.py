"""Fixtures of the end-to-end tests: real dockerd, the real Kuryr daemon, the real stack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from kuryr.stack import hostplan, hosts, lifecycle, vmplan, vms
from tests.conftest import StackFacts
from tests.e2e import keystone_env
from tests.e2e.helpers import DockerEnv, Neutron
from tests.e2e.keystone_env import KeystoneFacts
from tests.e2e.multihost import Host, hosts_from
from tests.e2e.nested import VMS, NestedVm, vms_from

# The machine's own host, h2 and h3.
HOSTS = 3


@pytest.fixture(autouse=True)
def _stack_is_up(stack: StackFacts) -> None:
    """Every e2e test needs the whole stack including the Kuryr daemon: fail, never skip."""
    if not stack.kuryr_healthy:
        pytest.fail(f"the Kuryr daemon is not healthy: {stack.kuryr_detail}", pytrace=False)


@pytest.fixture(scope="session")
def neutron() -> Neutron:
    return Neutron()


@pytest.fixture
def env() -> Iterator[DockerEnv]:
    resources = DockerEnv()
    try:
        yield resources
    finally:
        resources.close()


@pytest.fixture
def rel_env(env: DockerEnv) -> DockerEnv:
    """The disruptive tests' resources, under a ``rel-`` prefix of their own."""
    env.prefix = f"rel-{secrets.token_hex(4)}"
    return env


@pytest.fixture(scope="session")
def sim_hosts(stack: StackFacts) -> Iterator[list[Host]]:
    """The machine's host, h2 and h3 (``kuryr stack up --hosts 3``), shared by every test of
    the session. Hosts that existed before stay up afterwards; hosts this session made are
    removed at its end."""
    layout = stack.layout
    made_here = not hostplan.present(layout.root)
    report = lifecycle.start(layout, HOSTS)
    broken = [h for h in report if not h.healthy and h.name not in lifecycle.NOT_BLOCKING]
    if broken:
        pytest.fail(f"the simulated hosts are unhealthy: {broken}", pytrace=False)
    yield hosts_from(hosts.describe(layout, stack.chassis_hostname))
    if made_here:
        errors = lifecycle.down(layout, hosts_only=True)
        assert not errors, f"removing the simulated hosts: {errors}"


@pytest.fixture(scope="session")
def main_host(stack: StackFacts) -> Host:
    """The machine's own host, as ``kuryr stack hosts --json`` lists it."""
    return hosts_from(hosts.describe(stack.layout, stack.chassis_hostname))[0]


@pytest.fixture(scope="session")
def sim_vms(stack: StackFacts) -> Iterator[list[NestedVm]]:
    """vm1 (macvlan) and vm2 (vlan) of ``kuryr stack up --vms 2``, shared by every test of
    the session; only the VMs are started, the machine's stack is left as it runs. VMs that
    existed before stay up afterwards; VMs this session made are removed at its end."""
    layout = stack.layout
    made_here = not vmplan.present(layout.root)
    report = lifecycle.start_vms(layout, lifecycle.VmChoice(VMS))
    broken = [h for h in report if not h.healthy]
    if broken:
        pytest.fail(f"the simulated VMs are unhealthy: {broken}", pytrace=False)
    yield vms_from(vms.describe(layout, stack.chassis_hostname))
    if made_here:
        errors = lifecycle.down(layout, vms_only=True)
        assert not errors, f"removing the simulated VMs: {errors}"


@pytest.fixture(scope="session")
def keystone_facts(stack: StackFacts) -> KeystoneFacts:
    """Keystone and the Keystone-protected Neutron (``kuryr stack up --keystone``), brought
    up if absent and left up: the noauth Neutron and the stack's daemon do not need them."""
    return keystone_env.bring_up(stack.layout)
