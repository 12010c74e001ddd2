"""``docker run -p`` through Neutron floating IP port forwarding (kuryr.domain.published), seen
from the external side: this machine holds 172.24.4.1 on ``br-ex``, on the stack's external
network ``public``, so a client here connecting to ``<floating ip>:<port>`` comes from outside,
through ``kuryr-router``.

- ``-p 8080:80`` and ``-p 5353:53/udp`` answer on the network's floating IP; ``kuryr port``
  says where; ``docker stop`` takes the forwardings off and releases the floating IP;
- ``-p 8000-8002:80-82``: each container port from its own external port;
- the same external port again on the network's floating IP: ``docker run`` fails with a
  clear error and nothing is left (no forwarding, the failed container's port released);
- bad ``-p`` (a protocol Neutron cannot forward, a port outside 1-65535): a clear error, and
  nothing published.

The UDP server is this test's own Python, run in the container's network namespace (the
image's busybox has no UDP server applet).
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kuryr import naming
from kuryr.stack import external
from kuryr.stack.daemon import executable
from tests.conftest import StackFacts
from tests.e2e.helpers import (
    DOCKER,
    IMAGE,
    DockerEnv,
    Neutron,
    docker,
    docker_network_id,
    endpoint,
    run,
    wait_for,
)

pytestmark = pytest.mark.stack

PAGE = "kuryr-publish"


def web(*ports: int) -> tuple[str, ...]:
    """httpd on each of the container ports, the last in the foreground."""
    serve = " && ".join(
        [f"mkdir -p /www && echo {PAGE} > /www/index.html"]
        + [f"httpd -p {port} -h /www" for port in ports[:-1]]
        + [f"exec httpd -f -p {ports[-1]} -h /www"]
    )
    return ("sh", "-c", serve)


UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(512)
    s.sendto(b"pong " + data, peer)
"""


def attached_network(env: DockerEnv) -> str:
    return env.network("--ipam-driver", "kuryr", "-o", f"neutron.router={external.ROUTER}")


def floating_ip(neutron: Neutron, network: str) -> dict[str, Any] | None:
    """The network's Kuryr floating IP, if any."""
    network_id = neutron.network_of_docker(docker_network_id(network))["id"]
    found = neutron.find("floatingips", tags=f"{naming.TAG_PUBLISH_NET}:{network_id}")
    assert len(found) <= 1, f"more than one floating IP for {network}: {found}"
    return found[0] if found else None


def forwardings(neutron: Neutron, fip: dict[str, Any]) -> set[tuple[int, str, int]]:
    return {
        (f["external_port"], f["protocol"], f["internal_port"])
        for f in neutron.port_forwardings(fip["id"])
    }


def http_get(address: str, port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=3) as answer:
            return str(answer.read().decode().strip())
    except OSError:
        return None


def udp_ask(address: str, port: int, text: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        try:
            s.sendto(text.encode(), (address, port))
            return s.recvfrom(512)[0].decode()
        except OSError:
            return None


@contextmanager
def udp_server(container: str, port: int) -> Iterator[None]:
    """This test's UDP echo server in the container's network namespace."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", container)
    server = subprocess.Popen(
        ["nsenter", "-t", pid, "-n", sys.executable, "-c", UDP_SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        server.kill()
        server.wait(timeout=10)


def kuryr_port(stack: StackFacts, container: str) -> dict[str, Any]:
    conf = str(stack.layout.sub("kuryr.conf"))
    done = run([executable(), "--config-file", conf, "port", "--json", container], timeout=60)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def failed_run(env: DockerEnv, network: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker run -d`` expected to fail; the container it leaves is removed at teardown."""
    name = env.name("c")
    env.defer(lambda: docker("rm", "-f", name, check=False))
    started = time.monotonic()
    argv = [DOCKER, "run", "-d", "--name", name, "--net", network, *args, IMAGE, "sleep", "60"]
    done = run(argv, check=False)
    assert done.returncode != 0, f"docker run {args} succeeded"
    assert time.monotonic() - started < 60
    return done


def test_tcp_and_udp_are_reachable_from_outside_until_the_container_stops(
    env: DockerEnv, neutron: Neutron, stack: StackFacts
) -> None:
    net = attached_network(env)
    container = env.container(net, "-p", "8080:80", "-p", "5353:53/udp", cmd=web(80))
    fip = floating_ip(neutron, net)
    assert fip is not None, "no floating IP for the network"
    address = str(fip["floating_ip_address"])
    assert fip["floating_network_id"] == neutron.find("networks", name=external.NETWORK)[0]["id"]
    assert forwardings(neutron, fip) == {(8080, "tcp", 80), (5353, "udp", 53)}

    assert wait_for(lambda: http_get(address, 8080), f"http://{address}:8080/") == PAGE
    with udp_server(container, 53):
        assert wait_for(lambda: udp_ask(address, 5353, "hi"), f"udp {address}:5353") == "pong hi"

    [row] = kuryr_port(stack, container)["ports"]
    assert {(r["address"], r["external_port"], r["protocol"]) for r in row["published"]} == {
        (address, 8080, "tcp"),
        (address, 5353, "udp"),
    }

    docker("stop", "-t", "1", container)
    neutron.wait_gone("floatingips", str(fip["id"]))
    assert http_get(address, 8080) is None


def test_a_port_range_forwards_each_port(env: DockerEnv, neutron: Neutron) -> None:
    net = attached_network(env)
    env.container(net, "-p", "8000-8002:80-82", cmd=web(80, 81, 82))
    fip = floating_ip(neutron, net)
    assert fip is not None
    address = str(fip["floating_ip_address"])
    assert forwardings(neutron, fip) == {(8000, "tcp", 80), (8001, "tcp", 81), (8002, "tcp", 82)}
    for port in (8000, 8001, 8002):
        assert wait_for(functools.partial(http_get, address, port), f"{address}:{port}") == PAGE


def test_the_same_external_port_twice_fails_and_leaves_nothing(
    env: DockerEnv, neutron: Neutron
) -> None:
    net = attached_network(env)
    first = env.container(net, "-p", "8080:80", cmd=web(80))
    fip = floating_ip(neutron, net)
    assert fip is not None
    before = forwardings(neutron, fip)
    network_id = neutron.network_of_docker(docker_network_id(net))["id"]
    first_endpoint = endpoint(first, net).endpoint_id

    done = failed_run(env, net, "-p", "8081:81", "-p", "8080:80")

    assert f"{fip['floating_ip_address']}:8080/tcp is already published" in done.stderr
    assert forwardings(neutron, fip) == before

    # The failed container's port is not left held: only the first container's is.
    def held_by_first_only() -> bool | None:
        ports = neutron.find("ports", network_id=network_id, device_owner="compute:kuryr")
        return {p["device_id"] for p in ports if p["device_id"]} == {first_endpoint} or None

    wait_for(held_by_first_only, "the failed container's port to be released")
    address = str(fip["floating_ip_address"])
    assert wait_for(lambda: http_get(address, 8080), f"{address}:8080 still served") == PAGE


@pytest.mark.parametrize(
    ("publish", "message"),
    [
        ("8080:80/sctp", "sctp cannot be published"),
        ("70000:80", "70000"),
        ("8080:80/bogus", "bogus"),
    ],
    ids=["sctp", "port-out-of-range", "unknown-protocol"],
)
def test_bad_p_is_a_clear_error_and_publishes_nothing(
    env: DockerEnv, neutron: Neutron, publish: str, message: str
) -> None:
    net = attached_network(env)

    done = failed_run(env, net, "-p", publish)

    assert message in done.stderr, done.stderr
    assert floating_ip(neutron, net) is None
