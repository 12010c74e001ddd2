"""kuryr.backends.neutron against the real Neutron: calls, errors that name the call, tags by
PUT."""

from __future__ import annotations

import pytest

from kuryr.backends.neutron import connect
from kuryr.backends.neutron_api import NeutronError
from kuryr.config import NeutronConfig
from kuryr.errors import BackendError
from tests.conftest import StackFacts
from tests.integration.domain_helpers import neutron_client

pytestmark = pytest.mark.stack


async def test_create_tag_find_delete_and_count(stack: StackFacts) -> None:
    neutron = neutron_client(stack.neutron_url)
    net = await neutron.create("networks", {"name": "dom-client-net"})
    try:
        tags = await neutron.set_tags("networks", net["id"], ["dom-b", "dom-a"])
        assert tags == ["dom-a", "dom-b"] or sorted(tags) == ["dom-a", "dom-b"]
        found = await neutron.query("networks", {"tags": "dom-a,dom-b"})
        assert [n["id"] for n in found] == [net["id"]]
        assert (await neutron.show("networks", net["id"]) or {})["name"] == "dom-client-net"
    finally:
        assert await neutron.delete("networks", net["id"])
    assert await neutron.delete("networks", net["id"]) is False
    assert await neutron.show("networks", net["id"]) is None
    assert neutron.calls[("POST", "networks")] == 1
    assert neutron.calls[("DELETE", "networks")] == 2


async def test_neutron_error_names_call_and_cause(stack: StackFacts) -> None:
    neutron = neutron_client(stack.neutron_url)
    with pytest.raises(NeutronError) as info:
        await neutron.create("subnets", {"network_id": "dom-no-such", "cidr": "10.99.0.0/24"})
    assert info.value.http_status in (400, 404)
    assert "POST /subnets" in info.value.message


async def test_unreachable_neutron_is_a_backend_error() -> None:
    neutron = connect(
        NeutronConfig(auth_type="none", endpoint="http://127.0.0.1:9", timeout=2.0, retries=1)
    )
    with pytest.raises(BackendError, match="cannot connect"):
        await neutron.query("networks")
    assert neutron.calls[("GET", "networks")] == 1
