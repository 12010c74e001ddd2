"""The stack's external network, checked through the real components (non-disruptive):
``br-ex`` with the host's 172.24.4.1, the gateway chassis, the flat network ``public`` and
``kuryr-router`` in Neutron (made once: ``up`` again finds them), the L3 and port forwarding
service plugins, and the router's gateway answering on ``br-ex``."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any

import pytest

from kuryr.stack import external, lifecycle, ovs
from tests.conftest import StackFacts, bring_up

pytestmark = pytest.mark.stack


def neutron(facts: StackFacts, path: str) -> Any:
    with urllib.request.urlopen(f"{facts.neutron_url}/v2.0{path}", timeout=30) as resp:
        return json.loads(resp.read())


def named(facts: StackFacts, resource: str, name: str) -> list[dict[str, Any]]:
    return list(neutron(facts, f"/{resource}?name={name}")[resource])


def test_br_ex_holds_the_host_address_on_the_userspace_datapath(stack: StackFacts) -> None:
    assert ovs.vsctl("get", "bridge", external.BRIDGE, "datapath_type").strip() == "netdev"
    shown = subprocess.run(
        ["ip", "-j", "addr", "show", external.BRIDGE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    held = {(a["local"], a["prefixlen"]) for link in json.loads(shown) for a in link["addr_info"]}
    assert (external.HOST_IP, 24) in held
    mappings = ovs.vsctl("get", "open_vswitch", ".", "external-ids:ovn-bridge-mappings")
    assert mappings.strip().strip('"') == f"{external.PHYSNET}:{external.BRIDGE}"


def test_the_chassis_is_a_gateway_chassis(stack: StackFacts) -> None:
    assert external.gateway_chassis()


def test_public_is_a_flat_external_network_with_the_host_as_gateway(stack: StackFacts) -> None:
    [network] = named(stack, "networks", external.NETWORK)
    assert network["router:external"] is True
    assert network["provider:network_type"] == "flat"
    assert network["provider:physical_network"] == external.PHYSNET
    [subnet] = neutron(stack, f"/subnets?network_id={network['id']}")["subnets"]
    assert subnet["cidr"] == str(external.CIDR)
    assert subnet["gateway_ip"] == external.HOST_IP
    assert subnet["enable_dhcp"] is False


def test_kuryr_router_has_its_gateway_on_public_and_it_answers(stack: StackFacts) -> None:
    [network] = named(stack, "networks", external.NETWORK)
    [router] = named(stack, "routers", external.ROUTER)
    assert router["external_gateway_info"]["network_id"] == network["id"]
    assert router["external_gateway_info"]["enable_snat"] is True
    address = external.gateway_address(router)
    assert address is not None
    done = subprocess.run(
        ["ping", "-c", "1", "-W", "2", address], capture_output=True, check=False, timeout=10
    )
    assert done.returncode == 0, done.stdout


def test_l3_and_port_forwarding_are_served(stack: StackFacts) -> None:
    aliases = {e["alias"] for e in neutron(stack, "/extensions")["extensions"]}
    assert {"router", "ext-gw-mode", "floating-ip-port-forwarding"} <= aliases


def ids(facts: StackFacts) -> dict[str, list[str]]:
    made = (("networks", external.NETWORK), ("routers", external.ROUTER))
    return {r: [x["id"] for x in named(facts, r, name)] for r, name in made}


def test_up_again_makes_nothing_twice(stack: StackFacts) -> None:
    before = ids(stack)
    bring_up(stack.layout)
    assert ids(stack) == before
    health = {h.name: h for h in lifecycle.status(stack.layout)}
    assert health["external"].healthy, health["external"].detail
