"""``kuryr status`` and ``kuryr health`` against the stack's running daemon.

Status must report a container started here on a network of this test's own (``ops-``
prefix) with the ids Neutron and dockerd hold; health must pass on the healthy stack and name
each unreachable backend on a config that points at nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kuryr.backends.binding.base import container_ifname, host_ifname
from kuryr.stack.layout import Layout
from tests.conftest import StackFacts
from tests.e2e.helpers import IMAGE, Neutron, docker, docker_network_id, endpoint, run
from tests.integration.private_daemon import KURYR

pytestmark = pytest.mark.stack


def kuryr(config: Path, *args: str) -> tuple[int, str, str]:
    done = run([str(KURYR), "--config-file", str(config), *args], check=False, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def stack_config(stack: StackFacts) -> Path:
    return Layout.resolve(None).sub("kuryr.conf")


@pytest.fixture
def container(stack: StackFacts) -> Iterator[tuple[str, str]]:
    """(network name, container name): one running container on a fresh Kuryr network."""
    name = f"ops-{secrets.token_hex(4)}"
    docker("network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", name)
    try:
        docker("run", "-d", "--name", name, "--net", name, IMAGE, "sleep", "600")
        yield name, name
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", name, check=False)


def test_status_reports_the_network_and_endpoint_neutron_and_docker_hold(
    stack_config: Path, container: tuple[str, str]
) -> None:
    network, name = container
    docker_id = docker_network_id(network)
    seen = endpoint(name, network)

    code, out, err = kuryr(stack_config, "status", "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    ours = [n for n in report["networks"] if n["docker_id"] == docker_id]
    assert len(ours) == 1, f"network {docker_id} missing from {report['networks']}"
    net = ours[0]

    neutron = Neutron()
    neutron_net = neutron.show("networks", net["neutron_id"])
    assert neutron_net is not None
    assert f"kuryr.net.uuid.lh:{docker_id[:32]}" in neutron_net["tags"]
    subnet_ids = {s["id"] for s in neutron.find("subnets", network_id=net["neutron_id"])}
    assert {s["id"] for s in net["subnets"]} == subnet_ids

    [ep] = net["endpoints"]
    assert ep["endpoint_id"] == seen.endpoint_id
    port = neutron.show("ports", ep["port_id"])
    assert port is not None
    assert port["network_id"] == net["neutron_id"]
    assert ep["mac"] == port["mac_address"] == seen.mac
    assert ep["ips"] == [seen.ipv4]
    assert ep["host_ifname"] == host_ifname(port["id"])
    assert ep["container_ifname"] == container_ifname(port["id"])
    pooled = {p["subnet_id"] for p in report["pools"]}
    assert subnet_ids <= pooled, "the stack's daemon pools every subnet a container used"

    code, text, err = kuryr(stack_config, "status")
    assert code == 0, err
    assert f"network {docker_id[:12]}  neutron {net['neutron_id']}" in text
    assert f"port {ep['port_id']}  {seen.ipv4}  {seen.mac}" in text


def test_status_without_a_daemon_names_the_admin_socket(tmp_path: Path) -> None:
    config = tmp_path / "kuryr.conf"
    config.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n")

    code, out, err = kuryr(config, "status")

    assert code == 1
    assert out == ""
    assert f"{tmp_path / 'state' / 'admin.sock'}" in err
    assert "is kuryr serve running?" in err


def test_health_passes_on_the_running_stack(stack_config: Path) -> None:
    code, out, err = kuryr(stack_config, "health")

    assert code == 0, out + err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "daemon"],
        ["ok", "neutron"],
        ["ok", "ovsdb"],
    ]
    assert "br-int present" in lines[2]


def test_health_fails_naming_each_unreachable_backend(tmp_path: Path) -> None:
    config = tmp_path / "kuryr.conf"
    # Nothing listens on any of these: a socket and an OVSDB that do not exist, a refused port.
    config.write_text(
        f"[DEFAULT]\nsocket = {tmp_path / 'plugin.sock'}\n"
        "[neutron]\nauth_type = none\nendpoint = http://127.0.0.1:9\nretries = 0\n"
        f"[binding]\novsdb_connection = unix:{tmp_path / 'db.sock'}\n"
    )

    code, out, err = kuryr(config, "health")

    assert code == 1, out + err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["FAIL", "daemon"],
        ["FAIL", "neutron"],
        ["FAIL", "ovsdb"],
    ]
    assert "plugin.sock" in lines[0]
    assert "cannot connect to Neutron at http://127.0.0.1:9" in lines[1]
    assert "is not running (no socket)" in lines[2]
