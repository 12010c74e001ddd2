"""DeleteNetwork journals the network's removal from Neutron and answers, so neither a
SIGKILL in the middle of it nor a Neutron that refuses it leaks the network: a private
``kuryr serve`` (own socket and state directory) talks to Neutron through a gate
(tests/integration/neutron_gate.py) that holds or fails the removal's calls; the daemon is
then killed and restarted on the same state directory, straight on Neutron."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends import unixhttp
from kuryr.backends.neutron import Neutron
from kuryr.backends.state import DB_NAME
from kuryr.stack.layout import NEUTRON_URL
from tests.conftest import StackFacts
from tests.integration.daemon_process import (
    create_network,
    free_cidr,
    kill,
    remove_leftovers,
    serve,
    short_budget_config,
    wait_for,
)
from tests.integration.domain_helpers import docker_id, neutron_client
from tests.integration.neutron_gate import neutron_gate

pytestmark = pytest.mark.stack


def delete_network(root: Path, did: str) -> None:
    """DeleteNetwork: answered once the removal is journaled, whatever Neutron does next."""
    status, body = unixhttp.request(
        root / "kuryr.sock",
        "POST",
        "/NetworkDriver.DeleteNetwork",
        json.dumps({"NetworkID": did}).encode(),
        timeout=60,
    )
    assert (status, json.loads(body)) == (200, {}), body


def neutron_network(neutron: Neutron, network_id: str) -> dict[str, Any] | None:
    return asyncio.run(neutron.show("networks", network_id))


def kuryr_network(neutron: Neutron, did: str) -> dict[str, Any]:
    [found] = asyncio.run(neutron.query("networks", {"tags": naming.id_tag_filter(did)}))
    return found


def subnetpool_of(neutron: Neutron, network_id: str) -> str:
    [subnet] = asyncio.run(neutron.query("subnets", {"network_id": network_id}))
    return str(subnet["subnetpool_id"])


def pending_removals(root: Path) -> list[str]:
    db = sqlite3.connect(f"file:{root / 'state' / DB_NAME}?mode=ro", uri=True)
    try:
        return [str(r[0]) for r in db.execute("SELECT docker_id FROM removals")]
    finally:
        db.close()


def removal_killed_at(
    root: Path,
    host: str,
    did: str,
    cidr: str,
    step: Callable[[str], tuple[str, str]],
    **generic: str,
) -> tuple[str, str]:
    """Create a network through the gate, hold the removal's call ``step(network id)`` gives
    (method, path regex), DeleteNetwork, and SIGKILL the daemon while that call hangs.
    Returns the Neutron network's id and its kuryrPool subnetpool's."""
    neutron = neutron_client(NEUTRON_URL)
    with (
        neutron_gate(NEUTRON_URL) as gate,
        serve(root, short_budget_config(root, host, gate.url)) as daemon,
    ):
        create_network(root, did, cidr, generic)
        network_id = str(kuryr_network(neutron, did)["id"])
        subnetpool_id = subnetpool_of(neutron, network_id)
        held = gate.hold(*step(network_id))
        delete_network(root, did)
        assert pending_removals(root) == [did]
        wait_for(lambda: gate.seen(held), "the held call to reach the gate")
        kill(daemon)
    return network_id, subnetpool_id


def network_delete(network_id: str) -> tuple[str, str]:
    return "DELETE", f"/networks/{network_id}$"


def network_tags(network_id: str) -> tuple[str, str]:
    """The last step of releasing an adopted network: its Kuryr tags go."""
    return "PUT", f"/networks/{network_id}/tags$"


def test_removal_cut_by_sigkill_is_finished_by_the_next_daemon(
    stack: StackFacts, tmp_path: Path
) -> None:
    neutron, did, cidr = neutron_client(NEUTRON_URL), docker_id(), free_cidr()
    host = stack.chassis_hostname
    try:
        network_id, subnetpool_id = removal_killed_at(tmp_path, host, did, cidr, network_delete)
        # Docker has forgotten the network; Neutron still has it.
        assert neutron_network(neutron, network_id) is not None
        assert pending_removals(tmp_path) == [did]

        with serve(tmp_path, short_budget_config(tmp_path, host, NEUTRON_URL)):
            wait_for(lambda: neutron_network(neutron, network_id) is None, "the network to go")
            wait_for(lambda: pending_removals(tmp_path) == [], "the removal to be done")
            assert asyncio.run(neutron.show("subnetpools", subnetpool_id)) is None
        assert "resuming 1 pending network removal" in (tmp_path / "serve.log").read_text()
    finally:
        asyncio.run(remove_leftovers(neutron, did, cidr))


def test_removal_refused_by_neutron_is_retried_until_it_succeeds(
    stack: StackFacts, tmp_path: Path
) -> None:
    neutron, did, cidr = neutron_client(NEUTRON_URL), docker_id(), free_cidr()
    try:
        with (
            neutron_gate(NEUTRON_URL) as gate,
            serve(tmp_path, short_budget_config(tmp_path, stack.chassis_hostname, gate.url)),
        ):
            create_network(tmp_path, did, cidr)
            network_id = kuryr_network(neutron, did)["id"]
            refused = gate.fail(*network_delete(network_id))
            delete_network(tmp_path, did)
            wait_for(lambda: gate.seen(refused) >= 2, "the removal to be retried")
            assert neutron_network(neutron, network_id) is not None
            assert pending_removals(tmp_path) == [did]

            gate.clear()
            wait_for(lambda: neutron_network(neutron, network_id) is None, "the network to go")
            wait_for(lambda: pending_removals(tmp_path) == [], "the removal to be done")
    finally:
        asyncio.run(remove_leftovers(neutron, did, cidr))


def test_resumed_removal_of_a_network_already_gone_is_done(
    stack: StackFacts, tmp_path: Path
) -> None:
    neutron, did, cidr = neutron_client(NEUTRON_URL), docker_id(), free_cidr()
    host = stack.chassis_hostname
    try:
        network_id, subnetpool_id = removal_killed_at(tmp_path, host, did, cidr, network_delete)
        # Someone else finished the job while the daemon was down.
        assert asyncio.run(neutron.delete("networks", network_id))

        with serve(tmp_path, short_budget_config(tmp_path, host, NEUTRON_URL)):
            wait_for(lambda: pending_removals(tmp_path) == [], "the removal to be done")
            assert asyncio.run(neutron.show("subnetpools", subnetpool_id)) is None
        assert "removal of network" not in (tmp_path / "serve.log").read_text()
    finally:
        asyncio.run(remove_leftovers(neutron, did, cidr))


def test_resumed_removal_of_an_adopted_network_keeps_the_network(
    stack: StackFacts, tmp_path: Path
) -> None:
    neutron, did, cidr = neutron_client(NEUTRON_URL), docker_id(), free_cidr()
    host = stack.chassis_hostname
    name = f"jr-adopted-{secrets.token_hex(4)}"
    made = asyncio.run(neutron.create("networks", {"name": name, "admin_state_up": True}))
    try:
        network_id, subnetpool_id = removal_killed_at(
            tmp_path, host, did, cidr, network_tags, **{"neutron.net.uuid": made["id"]}
        )
        assert network_id == made["id"]
        assert pending_removals(tmp_path) == [did]

        with serve(tmp_path, short_budget_config(tmp_path, host, NEUTRON_URL)):
            wait_for(lambda: pending_removals(tmp_path) == [], "the removal to be done")
        network = neutron_network(neutron, made["id"])
        assert network is not None, "an adopted network was deleted"
        assert network["name"] == name
        assert not naming.is_adopted_network(network["tags"])
        assert naming.id_from_tags(network["tags"]) is None
        assert asyncio.run(neutron.query("subnets", {"network_id": made["id"]})) == []
        assert asyncio.run(neutron.show("subnetpools", subnetpool_id)) is None
    finally:
        asyncio.run(remove_leftovers(neutron, did, cidr))
        asyncio.run(neutron.delete("networks", made["id"]))
