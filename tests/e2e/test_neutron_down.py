"""Neutron stopped mid-run: requests fail within dockerd's plugin timeout naming the cause,
nothing half-made remains, and the same daemon serves again once Neutron is back.

Disruptive: stops the shared stack's neutron-server (by its pidfile) and always starts it
again; conftest runs this file after the other tests.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from kuryr.deadline import DOCKER_PLUGIN_TIMEOUT
from kuryr.stack import proc
from kuryr.stack.daemon import MARKER as DAEMON_MARKER
from kuryr.stack.daemon import executable
from kuryr.stack.neutron import Neutron as NeutronServer
from kuryr.stack.postgres import Postgres
from tests.conftest import StackFacts, bring_up
from tests.e2e.helpers import (
    PLUGIN_SOCK,
    CommandError,
    DockerEnv,
    Neutron,
    docker_network_id,
    endpoint,
)
from tests.e2e.scenario import free_kuryr_subnet
from tests.fuzz_requests import post

pytestmark = pytest.mark.stack


@pytest.fixture
def neutron_server(stack: StackFacts) -> Iterator[NeutronServer]:
    server = NeutronServer(stack.layout, Postgres(stack.layout))
    try:
        yield server
    finally:
        bring_up(stack.layout)


def daemon_pid(stack: StackFacts) -> int:
    pid = proc.running(stack.layout.pidfile("kuryr"), DAEMON_MARKER)
    assert pid is not None, "the stack's Kuryr daemon is not running"
    return pid


def test_neutron_down_then_back(
    stack: StackFacts, rel_env: DockerEnv, neutron_server: NeutronServer
) -> None:
    neutron = Neutron()
    cidr = ipaddress.ip_network(free_kuryr_subnet(neutron))
    net = rel_env.network("--ipam-driver", "kuryr", "--subnet", str(cidr))
    # The pool's fill may be done before Neutron stops, and a pool port needs no Neutron: an
    # address no pool port holds does.
    unpooled = str(cidr[250])
    neutron_net = neutron.network_of_docker(docker_network_id(net))
    pid = daemon_pid(stack)

    neutron_server.stop()
    try:
        started = time.monotonic()
        status, answer = post(
            PLUGIN_SOCK,
            "/NetworkDriver.CreateNetwork",
            json.dumps(
                {
                    "NetworkID": secrets.token_hex(32),
                    "Options": {},
                    "IPv4Data": [],
                    "IPv6Data": [],
                }
            ).encode(),
        )
        elapsed = time.monotonic() - started
        assert status == 502, answer
        assert "cannot connect to Neutron" in answer["Err"], answer
        assert "neutron-server" in answer["Err"], answer
        assert elapsed < DOCKER_PLUGIN_TIMEOUT, f"answered after {elapsed:.1f}s"

        with pytest.raises(CommandError) as failed:
            rel_env.container(net, "--ip", unpooled)
        assert "Neutron" in str(failed.value), failed.value
    finally:
        neutron_server.start()

    assert daemon_pid(stack) == pid, "the daemon was restarted"
    container = rel_env.container(net)
    ep = endpoint(container, net)
    port = neutron.port_of_endpoint(ep.endpoint_id)
    assert {f["ip_address"] for f in port["fixed_ips"]} == {ep.ipv4}

    # Nothing half-made: this host's Kuryr ports on the network are the running container's
    # and pool ports (no device_id) only.
    ports = neutron.find("ports", network_id=neutron_net["id"], device_owner="compute:kuryr")
    assert {p["device_id"] for p in ports if p["device_id"]} == {ep.endpoint_id}
    gc = subprocess.run(
        [
            executable(),
            "--config-file",
            str(stack.layout.sub("kuryr.conf")),
            "gc",
            "--json",
            "--grace",
            "0",
            "--network",
            neutron_net["id"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    actions = [a for a in json.loads(gc.stdout)["actions"] if a["kind"] in ("port", "address")]
    assert actions == []
