"""A Neutron network tagged the way kuryr-libnetwork tags one is found and used.

dockerd never replays CreateNetwork (not after a plugin restart, not after kuryr-libnetwork is
swapped for Kuryr), so the daemon must find a network it never saw created by its tags. A
test cannot make dockerd pick a Docker network id in advance, so it plays dockerd's part on
the daemon's socket with the exact requests dockerd sends for ``docker run`` and ``docker
network rm``, for a fresh Docker network id whose Neutron network was made and tagged by hand.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import Any

import pytest

from tests.e2e.helpers import (
    PLUGIN_SOCK,
    PORT_OWNER,
    DockerEnv,
    Neutron,
    network_tags,
    port_ips,
    run,
    wait_for,
)
from tests.e2e.scenario import free_subnet
from tests.fuzz_requests import post
from tests.removals_wait import stack_admin_socket, wait_removed

pytestmark = pytest.mark.stack


def call(method: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(PLUGIN_SOCK, f"/NetworkDriver.{method}", json.dumps(body).encode())
    assert status == 200, f"{method}: {status} {answer}"
    assert isinstance(answer, dict) and not answer.get("Err"), f"{method}: {answer}"
    return answer


def iface_ids_on_br_int() -> dict[str, str]:
    """iface-id -> interface name for every interface on br-int that has one."""
    out = run(
        ["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"]
    ).stdout
    found: dict[str, str] = {}
    for name, ext in json.loads(out)["data"]:
        ids = dict(ext[1])
        if "iface-id" in ids:
            found[ids["iface-id"]] = name
    return found


def unplug(iface: str) -> None:
    """Teardown after a failed DeleteEndpoint: no veth or br-int port may outlive the test."""
    run(["ovs-vsctl", "--if-exists", "del-port", "br-int", iface])
    run(["ip", "link", "del", iface], check=False)


@pytest.mark.parametrize("origin", ["made", "adopted"])
def test_network_tagged_by_kuryr_libnetwork_is_used(
    env: DockerEnv, neutron: Neutron, origin: str
) -> None:
    docker_id = secrets.token_hex(32)
    endpoint_id = secrets.token_hex(32)
    cidr = ipaddress.IPv4Network(free_subnet(neutron, "192.168.{}.0/24", range(200, 256)))
    network = neutron.create("networks", name=f"kuryr-net-{docker_id[:8]}")
    env.defer(lambda: neutron.delete("networks", network["id"]))
    tags = network_tags(docker_id)
    if origin == "adopted":
        tags.append(f"kuryr.net.existing:{docker_id[:12]}")
    neutron.set_tags("networks", network["id"], tags)
    neutron.create(
        "subnets",
        name=f"kuryr-subnet-{cidr}",
        network_id=network["id"],
        ip_version=4,
        cidr=str(cidr),
    )
    address = f"{cidr[10]}/{cidr.prefixlen}"
    ids = {"NetworkID": docker_id, "EndpointID": endpoint_id}

    created = call(
        "CreateEndpoint",
        {
            **ids,
            "Interface": {"Address": address, "AddressIPv6": "", "MacAddress": ""},
            "Options": {
                "com.docker.network.endpoint.exposedports": [],
                "com.docker.network.portmap": [],
            },
        },
    )
    port = neutron.port_of_endpoint(endpoint_id)
    env.defer(lambda: neutron.delete("ports", port["id"]))
    assert port["network_id"] == network["id"]
    assert port["device_owner"] == PORT_OWNER
    assert port_ips(port) == {str(cidr[10])}
    assert (
        created.get("Interface", {}).get("MacAddress", port["mac_address"]) == port["mac_address"]
    )

    joined = call(
        "Join", {**ids, "SandboxKey": f"/var/run/docker/netns/{docker_id[:12]}", "Options": {}}
    )
    assert joined["InterfaceName"]["DstPrefix"] == "eth"
    plugged = iface_ids_on_br_int()
    assert port["id"] in plugged, "Join did not plug the port into br-int"
    env.defer(lambda: unplug(plugged[port["id"]]))
    call("Leave", ids)
    call("DeleteEndpoint", ids)
    # No pool takes the port back (Docker's own IPAM on a network made by hand).
    wait_for(lambda: port["id"] not in iface_ids_on_br_int(), "DeleteEndpoint to unplug")
    neutron.wait_released(port["id"])

    call("DeleteNetwork", {"NetworkID": docker_id})
    # Answered once journaled: the removal from Neutron goes on in the background.
    wait_removed(stack_admin_socket(), [docker_id])
    if origin == "made":
        neutron.wait_gone("networks", network["id"])
    else:
        kept = neutron.show("networks", network["id"])
        assert kept is not None, "DeleteNetwork deleted a network Kuryr had adopted"
        assert [t for t in kept["tags"] if t.startswith("kuryr.")] == []
