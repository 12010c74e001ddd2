"""``--expose 80`` and ``-p 8080:80``: a client outside the container's security groups
reaches the container's port 80 while it is exposed, and cannot reach an unexposed one.

The project's default group lets its members talk to each other, so the client sits in a
namespace on a port with a group of its own (see netns_client).
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import DockerEnv, Neutron, docker, docker_network_id, endpoint, wait_for
from tests.e2e.netns_client import plug_client

pytestmark = pytest.mark.stack

PAGE = "kuryr-e2e"
SERVER = (
    "sh",
    "-c",
    f"mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www",
)


def fetch_from_container(container: str, address: str) -> str | None:
    argv = ["exec", container, "timeout", "8", "wget", "-q", "-O", "-", f"http://{address}/"]
    try:
        return docker(*argv)
    except AssertionError:
        return None


@pytest.mark.parametrize(
    "exposure", [("--expose", "80"), ("-p", "8080:80")], ids=["expose", "publish"]
)
def test_exposed_port_reachable_from_outside_its_groups(
    env: DockerEnv, neutron: Neutron, exposure: tuple[str, str]
) -> None:
    net = env.network("--ipam-driver", "kuryr")
    network = neutron.network_of_docker(docker_network_id(net))
    exposed = env.container(net, *exposure, cmd=SERVER)
    hidden = env.container(net, cmd=SERVER)
    exposed_ep, hidden_ep = endpoint(exposed, net), endpoint(hidden, net)
    client = plug_client(env, neutron, network)

    # Both servers really serve: a member of their groups gets the page from each.
    wait_for(lambda: fetch_from_container(hidden, exposed_ep.ipv4) == PAGE, "exposed to serve")
    wait_for(lambda: fetch_from_container(exposed, hidden_ep.ipv4) == PAGE, "hidden to serve")

    # The client's plumbing works and the exposure admits it.
    wait_for(lambda: client.fetch(exposed_ep.ipv4) == PAGE, f"{client.address} -> exposed:80")
    # Without an exposure the same client is refused (dropped: the connection times out).
    assert client.fetch(hidden_ep.ipv4) is None, "reached port 80 of a container not exposed"

    exposed_groups = set(neutron.port_of_endpoint(exposed_ep.endpoint_id)["security_groups"])
    plain_groups = set(neutron.port_of_endpoint(hidden_ep.endpoint_id)["security_groups"])
    exposure_groups = exposed_groups - plain_groups
    assert exposure_groups, "the exposed container's port has no group beyond the defaults"
    assert plain_groups <= exposed_groups, "the exposure replaced the port's other groups"

    env.remove_container(exposed)
    for group in exposure_groups:
        neutron.wait_gone("security-groups", group)
