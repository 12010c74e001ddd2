"""A bookkeeping write Neutron did but whose answer was lost (a timeout, or a daemon killed
mid-call) must not leave the journal believing Neutron still holds the old value: the next
entry for the port, which puts that old value back, has to be written.

Against the real Neutron; the lost answer comes from a gate in front of it
(tests/integration/neutron_gate.py), seen only by this test's client.
"""

from __future__ import annotations

import asyncio

import pytest

from kuryr.domain.ports.desired import assigned, cleaned
from kuryr.domain.ports.port import Port
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import (
    create_request,
    domain,
    memory_journal,
    neutron_client,
)
from tests.integration.neutron_gate import neutron_gate

pytestmark = pytest.mark.stack

SETTLE = 30.0


async def test_a_write_whose_answer_was_lost_is_put_back(stack: StackFacts) -> None:
    with neutron_gate(stack.neutron_url) as gate:
        async with domain(gate.url, stack.chassis_hostname) as d:
            did = d.new_id()
            pool = await d.ipam.request_pool(p.RequestPoolRequest())
            await d.networks.create(create_request(did, pool.pool, ""))
            address = await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
            network = await d.networks.get(did)
            ip = address.address.partition("/")[0]
            [raw] = await d.neutron.query(
                "ports", {"network_id": network.neutron_id, "fixed_ips": [f"ip_address={ip}"]}
            )
            port = Port.from_neutron(raw)
            journal = memory_journal(d.neutron)
            try:
                lost = gate.lose("PUT", rf"/ports/{port.id}$")
                journal.record(port, assigned(port, "e" * 64))
                truth = neutron_client(stack.neutron_url)
                # Neutron did the write; the journal got a 503 and retries in 2 s, so the
                # entry below replaces the assignment before any retry could land it again.
                async with asyncio.timeout(SETTLE):
                    while (await truth.show("ports", port.id) or {}).get("device_id") != ("e" * 64):
                        await asyncio.sleep(0.05)
                assert gate.seen(lost) >= 1
                gate.clear()
                journal.record(port, cleaned(port))
                await journal.flush([port.id], timeout=SETTLE)
                shown = await truth.show("ports", port.id)
                assert shown is not None and shown["device_id"] == "", (
                    f"Neutron kept the lost write's device_id: {shown and shown['device_id']}"
                )
            finally:
                await journal.stop()
