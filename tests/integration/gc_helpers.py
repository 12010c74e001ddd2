"""Leftovers made by hand for the ``kuryr gc`` tests, on a network of the test's own
(``rel-`` prefix), so other engineers' in-flight work on the shared stack is never judged."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron

OWNER = "compute:kuryr"


@pytest.fixture
def network(stack: StackFacts) -> Iterator[dict[str, Any]]:
    neutron = Neutron()
    net = neutron.create("networks", name=f"rel-gc-{secrets.token_hex(4)}")
    neutron.create(
        "subnets",
        network_id=net["id"],
        ip_version=4,
        cidr="192.168.231.0/24",
        name=f"rel-gc-{secrets.token_hex(4)}",
    )
    yield net
    for port in neutron.find("ports", network_id=net["id"]):
        neutron.delete("ports", port["id"])
    neutron.delete("networks", net["id"])


def port(neutron: Neutron, network_id: str, host: str, **attrs: Any) -> dict[str, Any]:
    return neutron.create(
        "ports",
        network_id=network_id,
        device_owner=OWNER,
        **{"binding:host_id": host},
        **attrs,
    )
