"""``[pool] bookkeeping``: with ``immediate``, CreateEndpoint answers only once Neutron holds
the port's device_id, name and tags; with ``deferred`` (a journal delay longer than the test)
Neutron does not hold them yet when it answers. A write Neutron refuses in ``immediate`` mode
fails CreateEndpoint and leaves no endpoint behind, its port released.

Against the real Neutron; the refusal comes from a gate in front of it
(tests/integration/neutron_gate.py), seen only by this test's client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from kuryr import deadline, naming
from kuryr.backends.neutron_api import Resource
from kuryr.domain.endpoints import Endpoints
from kuryr.domain.ports.journal import DELETE_WORKERS, Journal
from kuryr.errors import BackendError
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import (
    Domain,
    create,
    create_request,
    domain,
    endpoints,
    memory_journal,
    no_revoke,
)
from tests.integration.neutron_gate import neutron_gate

pytestmark = pytest.mark.stack

# Longer than any test here: a deferred write never lands while the test looks.
LONG_DELAY = 600.0
# The request budget of the failing CreateEndpoint: the journal retries a refused write every
# 2 s, so this is one or two attempts.
SHORT_BUDGET = 3.0
# The journal's delete lane: every slot of it held at the gate.
WORKERS = DELETE_WORKERS
# Only stops a broken run from hanging: the held deletes never end while the test looks.
SETTLE = 30.0


@asynccontextmanager
async def journaled(
    d: Domain, immediate: bool, delay: float = LONG_DELAY
) -> AsyncIterator[tuple[Endpoints, Journal]]:
    bookkeeping = memory_journal(d.neutron, delay)
    try:
        yield endpoints(d, bookkeeping=bookkeeping, immediate=immediate), bookkeeping
    finally:
        await bookkeeping.stop()


async def new_address(d: Domain, did: str) -> str:
    """A Kuryr network and one address RequestAddress holds on it (a port, not yet an
    endpoint's)."""
    pool = await d.ipam.request_pool(p.RequestPoolRequest())
    await d.networks.create(create_request(did, pool.pool, ""))
    addr = await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
    return addr.address


async def port_holding(d: Domain, did: str, address: str) -> Resource:
    network = await d.networks.get(did)
    ip = address.partition("/")[0]
    [port] = await d.neutron.query(
        "ports", {"network_id": network.neutron_id, "fixed_ips": [f"ip_address={ip}"]}
    )
    return port


def bookkept_for(port: Resource, eid: str) -> bool:
    return (
        port["device_id"] == eid
        and port["name"] == naming.port_name(eid)
        and set(naming.id_tags(eid)) <= set(port["tags"])
    )


@pytest.mark.parametrize("immediate", [True, False], ids=["immediate", "deferred"])
async def test_neutron_holds_the_bookkeeping_when_create_endpoint_answers(
    stack: StackFacts, immediate: bool
) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did, eid = d.new_id(), d.new_id()
        address = await new_address(d, did)
        async with journaled(d, immediate) as (eps, _):
            answer = await eps.create(create(did, eid, address))
            port = await port_holding(d, did, address)
            assert bookkept_for(port, eid) is immediate, port
            assert answer.wire() == {"Interface": {"MacAddress": port["mac_address"]}}
            await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)


async def test_refused_immediate_write_fails_create_endpoint_and_undoes_it(
    stack: StackFacts,
) -> None:
    with neutron_gate(stack.neutron_url) as gate:
        async with domain(gate.url, stack.chassis_hostname) as d:
            did, eid = d.new_id(), d.new_id()
            address = await new_address(d, did)
            held = await port_holding(d, did, address)
            refused = gate.fail("PUT", rf"/ports/{held['id']}")
            async with journaled(d, immediate=True) as (eps, _):
                with pytest.raises(BackendError), deadline.bounded(SHORT_BUDGET):
                    await eps.create(create(did, eid, address))
                assert gate.seen(refused) >= 1
                assert eps.known() == []
                gate.clear()
                assert await eps.find(eid, did) is None
                assert await d.neutron.show("ports", held["id"]) is None


async def test_immediate_write_does_not_queue_behind_background_work(stack: StackFacts) -> None:
    """Every worker slot is taken by deletes Neutron does not answer (held at the gate), and
    more wait for one: CreateEndpoint's write still lands within a short request budget."""
    with neutron_gate(stack.neutron_url) as gate:
        async with domain(gate.url, stack.chassis_hostname) as d:
            did, eid = d.new_id(), d.new_id()
            address = await new_address(d, did)
            stuck = gate.hold("DELETE", r"/ports/held-")
            async with journaled(d, immediate=True) as (eps, journal):
                held = [f"held-{i}" for i in range(WORKERS + 2)]
                for port_id in held:
                    journal.record_delete(port_id)
                background = asyncio.create_task(journal.flush(held, timeout=120.0))
                try:
                    while gate.seen(stuck) < WORKERS:
                        await asyncio.sleep(0.05)
                    with deadline.bounded(SHORT_BUDGET):
                        await eps.create(create(did, eid, address))
                    assert gate.seen(stuck) == WORKERS
                    assert bookkept_for(await port_holding(d, did, address), eid)
                    await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)
                finally:
                    background.cancel()
                    gate.clear()


async def test_deferred_assignment_does_not_wait_behind_held_deletes(stack: StackFacts) -> None:
    """Deferred bookkeeping, every delete slot held at the gate with more deletes waiting: the
    port handed to an endpoint still gets its device_id, name and tags (its own lane)."""
    with neutron_gate(stack.neutron_url) as gate:
        async with domain(gate.url, stack.chassis_hostname) as d:
            did, eid = d.new_id(), d.new_id()
            address = await new_address(d, did)
            stuck = gate.hold("DELETE", r"/ports/held-")
            async with journaled(d, immediate=False, delay=0.0) as (eps, journal):
                try:
                    for port_id in [f"held-{i}" for i in range(WORKERS + 2)]:
                        journal.record_delete(port_id)
                    while gate.seen(stuck) < WORKERS:
                        await asyncio.sleep(0.05)
                    await eps.create(create(did, eid, address))
                    port = await port_holding(d, did, address)
                    deadline = asyncio.get_running_loop().time() + SETTLE
                    while not bookkept_for(port, eid):
                        assert asyncio.get_running_loop().time() < deadline, port
                        await asyncio.sleep(0.2)
                        port = await port_holding(d, did, address)
                    assert gate.seen(stuck) == WORKERS
                    await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)
                finally:
                    gate.clear()
