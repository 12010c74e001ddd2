"""A private ``kuryr serve`` process on a state directory of the test's own, which outlives
it: started, SIGKILLed and started again by one test; the plugin requests it is sent and the
ports they leave in Neutron."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kuryr import naming
from kuryr.backends.neutron import Neutron
from kuryr.backends.unixhttp import json_call
from kuryr.stack import daemon, proc
from kuryr.stack.layout import NEUTRON_URL
from tests.integration.domain_helpers import cleanup, neutron_client
from tests.integration.private_daemon import KURYR

START_TIMEOUT = 60.0

SETTLE_TIMEOUT = 120.0


@contextmanager
def serve(root: Path, conf: Path) -> Iterator[subprocess.Popen[bytes]]:
    sock = root / "kuryr.sock"
    sock.unlink(missing_ok=True)
    with (root / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [str(KURYR), "--config-file", str(conf), "serve"], stdout=log, stderr=log
        )
    try:
        answers = daemon.child_answers(sock, process, START_TIMEOUT)
        assert answers, "the daemon never answered\n" + (root / "serve.log").read_text()
        yield process
    finally:
        proc.stop_child(process, timeout=60)


def plugin(root: Path, method: str, body: dict[str, Any]) -> Any:
    return json_call(root / "kuryr.sock", "POST", method, body)


def wait_for(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not (value := probe()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.25)
    return value


def port_at(address: str) -> dict[str, Any]:
    port = port_or_none(address)
    assert port is not None, f"no port holds {address}"
    return port


def port_or_none(address: str) -> dict[str, Any] | None:
    neutron = neutron_client(NEUTRON_URL)
    ports = asyncio.run(neutron.query("ports", {"fixed_ips": [f"ip_address={address}"]}))
    assert len(ports) <= 1, ports
    return ports[0] if ports else None


def short_budget_config(root: Path, host: str, neutron_url: str) -> Path:
    """A daemon whose requests give up after 3 s: DeleteNetwork answers while its removal,
    held at the gate, is still under way."""
    conf = root / "kuryr.conf"
    conf.write_text(
        f"[DEFAULT]\nsocket = {root / 'kuryr.sock'}\nstate_dir = {root / 'state'}\n"
        f"request_timeout = 3\n"
        f"[neutron]\nauth_type = none\nendpoint = {neutron_url}\n"
        f"[binding]\nhost = {host}\n"
    )
    return conf


def free_cidr() -> str:
    """A /24 outside the default subnetpool (10.10.0.0/16): Kuryr makes it a kuryrPool-*
    subnetpool, which the removal must delete too."""
    return f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24"


def create_network(root: Path, did: str, cidr: str, generic: dict[str, str] | None = None) -> Any:
    """RequestPool, the gateway's RequestAddress and CreateNetwork, as dockerd sends them;
    returns RequestPool's answer."""
    pool = plugin(root, "/IpamDriver.RequestPool", {"Pool": cidr})
    gateway = plugin(
        root,
        "/IpamDriver.RequestAddress",
        {"PoolID": pool["PoolID"], "Options": {"RequestAddressType": "com.docker.network.gateway"}},
    )
    plugin(
        root,
        "/NetworkDriver.CreateNetwork",
        {
            "NetworkID": did,
            "IPv4Data": [
                {"AddressSpace": "no_address_space", "Pool": cidr, "Gateway": gateway["Address"]}
            ],
            "IPv6Data": [],
            "Options": {"com.docker.network.generic": generic or {}},
        },
    )
    return pool


async def remove_leftovers(neutron: Neutron, did: str, cidr: str) -> None:
    """What a failed run left: Kuryr's network (domain_helpers.cleanup) and the CIDR's
    kuryrPool subnetpool, which that cleanup misses once the network's subnet is gone."""
    await cleanup(neutron, [did])
    for pool in await neutron.query("subnetpools", {"name": naming.subnetpool_name(cidr)}):
        await neutron.delete("subnetpools", pool["id"])


def kill(process: Any) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
