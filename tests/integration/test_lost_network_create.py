"""A CreateNetwork whose ``POST /networks`` Neutron did but never answered leaves no network:
Docker gets a clear error, and the network Neutron made (untagged, named ``kuryr-net-<id>``) is
found by its name and deleted (kuryr.domain.lost_creates); a daemon killed between the POST
and its answer has the next start delete it.

A private ``kuryr serve`` talks to the real Neutron through a gate
(tests/integration/neutron_gate.py) that loses, or holds, the answer of that one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends import unixhttp
from kuryr.backends.neutron import Neutron
from kuryr.stack.layout import NEUTRON_URL
from tests.conftest import StackFacts
from tests.integration.daemon_process import (
    create_network,
    free_cidr,
    kill,
    plugin,
    remove_leftovers,
    serve,
)
from tests.integration.domain_helpers import docker_id, neutron_client
from tests.integration.neutron_gate import neutron_gate

pytestmark = pytest.mark.stack

# How long the lost network may stay in Neutron after CreateNetwork failed.
SETTLED_WITHIN = 15.0
NETWORKS_POST = ("POST", r"/networks$")


def config(root: Path, host: str, neutron_url: str) -> Path:
    """A daemon whose Docker requests have 20 s, so a held answer outlasts no budget before
    the test kills the daemon."""
    conf = root / "kuryr.conf"
    conf.write_text(
        f"[DEFAULT]\nsocket = {root / 'kuryr.sock'}\nstate_dir = {root / 'state'}\n"
        f"request_timeout = 20\n"
        f"[neutron]\nauth_type = none\nendpoint = {neutron_url}\n"
        f"[binding]\nhost = {host}\n"
    )
    return conf


def create_answer(root: Path, did: str, cidr: str) -> tuple[int, dict[str, Any]]:
    """RequestPool and the gateway, then CreateNetwork's raw answer (status, body)."""
    pool = plugin(root, "/IpamDriver.RequestPool", {"Pool": cidr})
    gateway = plugin(
        root,
        "/IpamDriver.RequestAddress",
        {"PoolID": pool["PoolID"], "Options": {"RequestAddressType": "com.docker.network.gateway"}},
    )
    data = {"AddressSpace": "no_address_space", "Pool": cidr, "Gateway": gateway["Address"]}
    body = {"NetworkID": did, "IPv4Data": [data], "IPv6Data": [], "Options": {}}
    status, raw = unixhttp.request(
        root / "kuryr.sock",
        "POST",
        "/NetworkDriver.CreateNetwork",
        json.dumps(body).encode(),
        timeout=60,
    )
    return status, json.loads(raw)


def named(neutron: Neutron, did: str) -> list[dict[str, Any]]:
    return asyncio.run(neutron.query("networks", {"name": naming.network_name(did)}))


def gone_within(neutron: Neutron, did: str, seconds: float) -> float:
    """Seconds until no network is named after ``did``; fails after ``seconds``."""
    began = time.monotonic()
    while named(neutron, did):
        assert time.monotonic() - began < seconds, f"network of {did[:12]} still in Neutron"
        time.sleep(0.2)
    return time.monotonic() - began


async def delete_named(neutron: Neutron, did: str) -> None:
    for network in await neutron.query("networks", {"name": naming.network_name(did)}):
        await neutron.delete("networks", network["id"])


def test_lost_answer_fails_clearly_and_leaves_no_network(stack: StackFacts, tmp_path: Path) -> None:
    neutron, did, cidr = neutron_client(NEUTRON_URL), docker_id(), free_cidr()
    after, after_cidr = docker_id(), free_cidr()
    try:
        with (
            neutron_gate(NEUTRON_URL) as gate,
            serve(tmp_path, config(tmp_path, stack.chassis_hostname, gate.url)),
        ):
            lost = gate.lose(*NETWORKS_POST)
            status, answer = create_answer(tmp_path, did, cidr)
            assert gate.seen(lost) == 1
            assert status != 200, answer
            assert "POST /networks" in answer["Err"] and "will be deleted" in answer["Err"]
            took = gone_within(neutron, did, SETTLED_WITHIN)
            print(f"lost network deleted {took:.2f}s after CreateNetwork's error")

            gate.clear()
            create_network(tmp_path, after, after_cidr)
            [made] = named(neutron, after)
            assert naming.id_from_tags(made["tags"]) == after
    finally:
        asyncio.run(delete_named(neutron, did))
        asyncio.run(remove_leftovers(neutron, did, cidr))
        asyncio.run(remove_leftovers(neutron, after, after_cidr))


def test_create_cut_by_sigkill_is_settled_by_the_next_start(
    stack: StackFacts, tmp_path: Path
) -> None:
    neutron, did, cidr = neutron_client(NEUTRON_URL), docker_id(), free_cidr()
    host = stack.chassis_hostname
    try:
        with (
            neutron_gate(NEUTRON_URL) as gate,
            serve(tmp_path, config(tmp_path, host, gate.url)) as daemon,
        ):
            gate.hold_answer(*NETWORKS_POST)
            # The answer never comes: the request dies with the daemon.
            call = threading.Thread(target=_quietly, args=(create_answer, tmp_path, did, cidr))
            call.start()
            began = time.monotonic()
            while not named(neutron, did):
                assert time.monotonic() - began < 10.0, "Neutron never made the network"
                time.sleep(0.1)
            kill(daemon)
            call.join(timeout=30)
        [left] = named(neutron, did)
        assert naming.id_from_tags(left.get("tags") or []) is None  # untagged: a leak

        with serve(tmp_path, config(tmp_path, host, NEUTRON_URL)):
            took = gone_within(neutron, did, SETTLED_WITHIN)
            print(f"killed daemon's network deleted {took:.2f}s after the restart")
        assert "left unsettled" in (tmp_path / "serve.log").read_text()
    finally:
        asyncio.run(delete_named(neutron, did))
        asyncio.run(remove_leftovers(neutron, did, cidr))


def _quietly(*call: Any) -> None:
    # The daemon is killed mid-request: no answer, as expected.
    with contextlib.suppress(Exception):
        call[0](*call[1:])
