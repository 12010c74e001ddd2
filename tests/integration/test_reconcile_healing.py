"""The daemon's own reconciliation passes (kuryr.ops.healing) against the real stack: what they
reclaim and what they must leave alone.

A domain is built as ``kuryr serve`` builds it (kuryr.driver.build, a private state
directory) and given a network dockerd really has: one made by ``docker network create`` on
the stack's daemon (``heal-`` prefix), entered in the private state as that daemon entered it
in its own. Its periodic passes are off; the test runs them (``Healer.one_pass``) against the
real Neutron, OVSDB, kernel and dockerd, with a grace of a second. dockerd lists none of the
test's endpoints: each is an orphan unless the daemon's own rules keep it.

The stack's daemon judges the same network (its grace is 20 s): each test's own ports are made
and judged well within it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.model import Network, Subnet
from kuryr.backends.state import MODE_ANY, State
from kuryr.config import BindingConfig, Config, NeutronConfig, PoolConfig, ReconcileConfig
from kuryr.domain.ipam import Ipam, PoolChoice
from kuryr.driver import KuryrNetworkDriver, build
from kuryr.ops.healing import Healer
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron, docker, docker_network_id
from tests.e2e.scenario import free_subnet

pytestmark = pytest.mark.stack

GRACE = 1.0
PASSES = 4
FILL_TIMEOUT = 120.0


@dataclass
class Side:
    """The private daemon's domain on a network dockerd has."""

    driver: KuryrNetworkDriver
    ipam: Ipam
    healer: Healer
    state: State
    docker_id: str
    network: dict[str, Any]
    subnet: Subnet
    pool_id: str
    made: list[str] = field(default_factory=list)  # ports made by hand, removed at the end

    async def request_address(self) -> str:
        answer = await self.ipam.request_address(p.RequestAddressRequest(pool_id=self.pool_id))
        return answer.address

    async def endpoint(self, address: str) -> str:
        endpoint_id = secrets.token_hex(32)
        await self.driver.create_endpoint(
            p.CreateEndpointRequest(
                network_id=self.docker_id,
                endpoint_id=endpoint_id,
                interface=p.EndpointInterface(address=address),
            )
        )
        return endpoint_id

    def port(self, host: str, **attrs: Any) -> dict[str, Any]:
        made = Neutron().create(
            "ports",
            network_id=self.network["id"],
            device_owner=naming.DEVICE_OWNER,
            **{"binding:host_id": host},
            **attrs,
        )
        self.made.append(made["id"])
        return made

    async def passes_until(self, done: Callable[[], bool]) -> list[str]:
        """A pass, then one after each grace until ``done`` (PASSES at most); the failures."""
        errors: list[str] = []
        async with self.healer.reconciler() as reconciler:
            errors += await self.healer.one_pass(reconciler)
            for _ in range(PASSES):
                await asyncio.sleep(GRACE)
                errors += await self.healer.one_pass(reconciler)
                if done():
                    break
        return errors

    def exists(self, port_id: str) -> bool:
        return Neutron().show("ports", port_id) is not None


def port_of(state: State, endpoint_id: str) -> str:
    stored = state.endpoint(endpoint_id)
    assert stored is not None, f"endpoint {endpoint_id[:12]} is not in the local state"
    return str(stored[1]["id"])


@dataclass(frozen=True)
class DockerNetwork:
    docker_id: str
    network: dict[str, Any]
    subnet: Subnet


@pytest.fixture(scope="module")
def docker_network(stack: StackFacts) -> Iterator[DockerNetwork]:
    """One network dockerd has, for the module's tests (each costs the stack's daemon a pool
    of ports to make and delete)."""
    neutron = Neutron()
    name = f"heal-{secrets.token_hex(4)}"
    cidr = free_subnet(neutron, "10.{}.9.0/24", range(180, 200))
    docker("network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", cidr, name)
    try:
        did = docker_network_id(name)
        net = neutron.network_of_docker(did)
        subnet = Subnet.from_neutron(neutron.find("subnets", network_id=net["id"])[0])
        yield DockerNetwork(did, net, subnet)
    finally:
        docker("network", "rm", name)


@asynccontextmanager
async def side(
    stack: StackFacts, state_dir: Path, pool: PoolConfig, on: DockerNetwork
) -> AsyncIterator[Side]:
    """A private domain whose state holds ``on`` as the stack's daemon holds it."""
    net, subnet = on.network, on.subnet
    state = State.open(state_dir)
    state.save_network(Network(on.docker_id, net["id"], int(net["mtu"]), net["tags"], [subnet]))
    state.close()
    config = Config(
        state_dir=state_dir,
        neutron=NeutronConfig(auth_type="none", endpoint=stack.neutron_url, timeout=60.0),
        binding=BindingConfig(host=stack.chassis_hostname),
        pool=pool,
        reconcile=ReconcileConfig(interval=0.0, grace=GRACE),
    )
    made: list[str] = []
    domain, close = await build(config)
    driver, ipam = domain.network, domain.ipam
    assert isinstance(driver, KuryrNetworkDriver) and driver.healer is not None
    assert isinstance(ipam, Ipam)
    state = State.open(state_dir)
    try:
        pool_id = PoolChoice(str(subnet.subnetpool_id), subnet.cidr).pool_id
        yield Side(driver, ipam, driver.healer, state, on.docker_id, net, subnet, pool_id, made)
    finally:
        held = driver.pools.pool(subnet.id)
        if held is not None:
            made += [*held.free, *held.taken]
        made += [str(port["id"]) for _, port in state.endpoints().values()]
        state.close()
        await close()
        for port_id in made:
            Neutron().delete("ports", port_id)


async def test_orphans_go_on_the_second_look_in_flight_and_foreign_ports_stay(
    stack: StackFacts, tmp_path: Path, docker_network: DockerNetwork
) -> None:
    # No pools, and bookkeeping held back: a new endpoint's device_id stays journaled.
    pool = PoolConfig(bookkeeping_delay=3600.0)
    async with side(stack, tmp_path, pool, docker_network) as s:
        gone_endpoint = await s.endpoint(await s.request_address())
        await s.driver.endpoints.flush()  # its device_id is in Neutron: a plain orphan
        gone_port = port_of(s.state, gone_endpoint)
        in_flight = await s.endpoint(await s.request_address())
        in_flight_port = port_of(s.state, in_flight)
        reserved = await s.request_address()  # RequestAddress answered, no CreateEndpoint yet
        orphan = s.port(stack.chassis_hostname, device_id=secrets.token_hex(32))
        reservation = s.port(stack.chassis_hostname, name=naming.UNBOUND_PORT_NAME)
        elsewhere = s.port("heal-other-host", device_id=secrets.token_hex(32))

        async with s.healer.reconciler() as reconciler:
            assert await s.healer.one_pass(reconciler) == []
            # One look reclaims nothing.
            for port_id in (gone_port, orphan["id"], reservation["id"]):
                assert s.exists(port_id), "reclaimed on the first pass"
            # A pass whose dockerd view failed (a busy dockerd) judges no port: a few more.
            for _ in range(PASSES):
                await asyncio.sleep(GRACE)
                assert await s.healer.one_pass(reconciler) == []
                if not s.exists(gone_port):
                    break

        assert not s.exists(gone_port), "an endpoint's orphaned port was kept"
        assert s.state.endpoint(gone_endpoint) is None, "the reclaimed endpoint stays in state"
        assert not s.exists(orphan["id"]), "a port of no endpoint was kept"
        assert not s.exists(reservation["id"]), "a reservation nobody holds was kept"
        assert s.exists(elsewhere["id"]), "another host's port was removed"
        assert s.exists(in_flight_port), "the port of an endpoint being set up was removed"
        assert port_of(s.state, in_flight) == in_flight_port
        address = reserved.split("/")[0]
        holding = Neutron().find(
            "ports", network_id=s.network["id"], fixed_ips=f"ip_address={address}"
        )
        assert len(holding) == 1, "the reservation RequestAddress handed out was removed"


async def test_free_pool_ports_stay_and_a_taken_port_nobody_holds_returns(
    stack: StackFacts, tmp_path: Path, docker_network: DockerNetwork
) -> None:
    async with side(stack, tmp_path, PoolConfig(min=2, max=2, batch=2), docker_network) as s:
        pool = s.driver.pools.ensure(s.subnet, MODE_ANY)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FILL_TIMEOUT
        while len(pool.free) < 2 or pool.refill is not None:
            assert loop.time() < deadline, f"the pool never filled: {pool.summary()}"
            await asyncio.sleep(0.2)
        address = (await s.request_address()).split("/")[0]
        # CreateEndpoint took the reservation and the daemon died before it saved the
        # endpoint: the pool port is taken, and nothing holds it.
        taken = s.ipam.broker.take_reservation(s.subnet.id, address)
        assert taken is not None
        while len(pool.free) < 2 or pool.refill is not None:
            assert loop.time() < deadline, f"the pool never refilled: {pool.summary()}"
            await asyncio.sleep(0.2)
        await s.driver.endpoints.flush()
        free = set(pool.free)
        # A free port whose cleaning the journal believes written while Neutron still names
        # a gone endpoint (a write that landed as the daemon was killed).
        stale = next(iter(free))
        dead = secrets.token_hex(32)
        Neutron().update("ports", stale, device_id=dead, name=naming.port_name(dead))

        def healed() -> bool:
            shown = Neutron().show("ports", stale) or {}
            return taken.id not in pool.taken and shown.get("device_id") == ""

        assert await s.passes_until(healed) == []

        assert taken.id not in pool.taken, "a taken port nobody holds stays taken"
        shown = Neutron().show("ports", stale)
        assert shown is not None and stale in pool.free, "a free pool port left its pool"
        assert (shown["device_id"], shown["name"]) == ("", naming.POOL_PORT_NAME)
        assert free <= set(pool.free), "a free pool port left its pool"
        assert len(pool.free) + pool.creating <= 2
        await s.driver.endpoints.flush()
        for port_id in free:
            assert s.exists(port_id), "a free pool port was removed"
        if taken.id not in pool.free:
            assert not s.exists(taken.id), "a full pool neither took it back nor dropped it"
