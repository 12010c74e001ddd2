"""``kuryr port CONTAINER``: right after ``docker run`` it names the container's port on each
Kuryr network, the same one dockerd and (once bookkeeping is done) Neutron know; an unknown
container, or one on no Kuryr network, is a clear error with exit status 1."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from kuryr import config as config_mod
from kuryr.ops.admin_api import BOOKKEEPING_DONE, BOOKKEEPING_PENDING, STATUS_UNKNOWN
from kuryr.ops.port import bookkeeping_bound
from kuryr.stack.daemon import executable
from tests.conftest import StackFacts
from tests.e2e.helpers import (
    IMAGE,
    DockerEnv,
    Neutron,
    br_int_ports,
    docker,
    endpoint,
    port_ips,
    run,
    unique_name,
)

pytestmark = pytest.mark.stack

NEUTRON_PORT_STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR")


def kuryr_port(stack: StackFacts, *args: str) -> subprocess.CompletedProcess[str]:
    conf = str(stack.layout.sub("kuryr.conf"))
    return run([executable(), "--config-file", conf, "port", *args], check=False, timeout=60)


def port_json(stack: StackFacts, container: str) -> dict[str, Any]:
    done = kuryr_port(stack, "--json", container)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def bookkept(stack: StackFacts, container: str) -> dict[str, Any]:
    """``kuryr port --json`` once every port's bookkeeping is done, within the stated bound."""
    bound = bookkeeping_bound(config_mod.load(stack.layout.sub("kuryr.conf")))
    deadline = time.monotonic() + bound
    while True:
        answer = port_json(stack, container)
        if all(p["bookkeeping"] == BOOKKEEPING_DONE for p in answer["ports"]):
            return answer
        assert time.monotonic() < deadline, f"bookkeeping pending after {bound:.0f}s: {answer}"
        time.sleep(0.2)


def test_port_of_a_container_on_two_kuryr_networks(
    stack: StackFacts, env: DockerEnv, neutron: Neutron
) -> None:
    first = env.network("--ipam-driver", "kuryr")
    second = env.network("--ipam-driver", "kuryr")
    name = env.container(first)
    docker("network", "connect", second, name)

    answer = port_json(stack, name)
    container_id = docker("inspect", "-f", "{{.Id}}", name)
    assert answer["container"] == {"id": container_id, "name": name}
    assert [p["network"] for p in answer["ports"]] == sorted([first, second])
    plugged = br_int_ports()
    for port in answer["ports"]:
        ep = endpoint(name, port["network"])
        assert port["endpoint_id"] == ep.endpoint_id
        assert port["ips"] == [ep.ipv4]
        assert port["mac"] == ep.mac
        assert port["bookkeeping"] in (BOOKKEEPING_DONE, BOOKKEEPING_PENDING)
        # What the daemon last knew (kuryr.domain.ports.status), or that it knows none.
        assert port["status"] in (STATUS_UNKNOWN, *NEUTRON_PORT_STATUSES)
        assert port["host_ifname"] in plugged

    by_id = bookkept(stack, container_id)
    for port in by_id["ports"]:
        found = neutron.find("ports", device_id=port["endpoint_id"])
        assert [p["id"] for p in found] == [port["port_id"]]
        assert port_ips(found[0]) == set(port["ips"])
        assert found[0]["mac_address"] == port["mac"]
        assert found[0]["name"] == f"{port['endpoint_id']}-port"

    text = kuryr_port(stack, name)
    assert text.returncode == 0, text.stderr
    for port in by_id["ports"]:
        assert port["port_id"] in text.stdout
        assert f"{port['host_ifname']} (host)" in text.stdout
    assert "bookkeeping  done" in text.stdout


def test_unknown_container_is_an_error(stack: StackFacts) -> None:
    missing = unique_name()
    done = kuryr_port(stack, missing)
    assert done.returncode == 1
    assert done.stderr.strip() == f"kuryr port: no such container: {missing}"
    assert done.stdout == ""


def test_container_on_no_kuryr_network_is_an_error(stack: StackFacts, env: DockerEnv) -> None:
    name = env.name("c")
    env.defer(lambda: docker("rm", "-f", name, check=False))
    docker("run", "-d", "--name", name, "--net", "none", IMAGE, "sleep", "3600")
    done = kuryr_port(stack, name)
    assert done.returncode == 1
    assert f"container {name} has no endpoint on a 'kuryr' network" in done.stderr
