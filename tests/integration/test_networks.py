"""Networks against the real Neutron: create, find again, idempotency, adoption, delete."""

from __future__ import annotations

import pytest

from kuryr import naming
from kuryr.errors import Conflict, NotFound
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import create_request, domain, make_domain

pytestmark = pytest.mark.stack


async def test_docker_ipam_network_is_created_tagged_and_found_again(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        req = create_request(
            did, "172.31.240.0/24", "172.31.240.1/24", address_space="LocalDefault"
        )
        net = await d.networks.create(req)
        raw = await d.neutron.show("networks", net.neutron_id)
        assert raw is not None
        assert raw["name"] == naming.network_name(did)
        assert set(naming.id_tags(did)) <= set(raw["tags"])
        [subnet] = await d.neutron.query("subnets", {"network_id": net.neutron_id})
        assert subnet["name"] == "kuryr-subnet-172.31.240.0/24"
        assert subnet["gateway_ip"] == "172.31.240.1"
        assert subnet["enable_dhcp"] is False
        assert subnet["subnetpool_id"] is None

        # Twice: still one network (found by its tags, not made again).
        again = await d.networks.create(req)
        assert again.neutron_id == net.neutron_id
        fresh = make_domain(d.neutron, d.host)  # a restarted daemon: empty caches
        found = await fresh.networks.get(did)
        assert found.neutron_id == net.neutron_id
        assert [s.id for s in found.subnets] == [subnet["id"]]

        await fresh.networks.delete(did)
        assert await d.neutron.show("networks", net.neutron_id) is None
        await fresh.networks.delete(did)  # idempotent
        with pytest.raises(NotFound):
            await fresh.networks.get(did)


async def test_adopted_network_is_untagged_not_deleted(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        existing = await d.neutron.create("networks", {"name": "dom-adopt-net"})
        try:
            await d.neutron.set_tags("networks", existing["id"], ["dom-keep"])
            did = d.new_id()
            generic = {"neutron.net.name": "dom-adopt-net"}
            net = await d.networks.create(
                create_request(did, "172.31.241.0/24", "172.31.241.1/24", generic, "LocalDefault")
            )
            assert net.neutron_id == existing["id"]
            raw = await d.neutron.show("networks", existing["id"]) or {}
            assert set(raw["tags"]) == {
                "dom-keep",
                *naming.id_tags(did),
                naming.existing_net_tag(did),
            }
            await d.networks.delete(did)
            raw = await d.neutron.show("networks", existing["id"]) or {}
            assert raw["tags"] == ["dom-keep"]
            assert await d.neutron.query("subnets", {"network_id": existing["id"]}) == []
        finally:
            await d.neutron.delete("networks", existing["id"])


async def test_network_tagged_by_hand_like_kuryr_libnetwork_is_used(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        hand = await d.neutron.create("networks", {"name": "dom-hand-tagged"})
        await d.neutron.set_tags("networks", hand["id"], naming.id_tags(did))
        net = await d.networks.create(
            create_request(did, "172.31.242.0/24", "172.31.242.1/24", address_space="LocalDefault")
        )
        assert net.neutron_id == hand["id"]
        assert len(await d.neutron.query("subnets", {"network_id": hand["id"]})) == 1


async def test_adopting_a_missing_network_fails_cleanly(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        generic = {"neutron.net.uuid": "00000000-0000-4000-8000-000000000000"}
        with pytest.raises(NotFound):
            await d.networks.create(create_request(did, "172.31.243.0/24", "", generic))
        assert await d.neutron.query("networks", {"tags": naming.id_tag_filter(did)}) == []


async def test_failed_subnet_leaves_no_network(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        # Two overlapping pools on one network: Neutron refuses the subnets after the
        # network exists, so the network must be undone.
        req = p.CreateNetworkRequest.model_validate(
            {
                "NetworkID": did,
                "IPv4Data": [
                    {"AddressSpace": "LocalDefault", "Pool": "172.31.244.0/24"},
                    {"AddressSpace": "LocalDefault", "Pool": "172.31.244.0/25"},
                ],
            }
        )
        with pytest.raises(Conflict):
            await d.networks.create(req)
        assert await d.neutron.query("networks", {"name": naming.network_name(did)}) == []


async def test_network_with_an_endpoint_port_is_not_deleted(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        net = await d.networks.create(
            create_request(did, "172.31.245.0/24", "172.31.245.1/24", address_space="LocalDefault")
        )
        port = await d.neutron.create(
            "ports",
            {
                "network_id": net.neutron_id,
                "device_owner": naming.DEVICE_OWNER,
                "device_id": "dom-endpoint",
                "name": "dom-port",
            },
        )
        with pytest.raises(Conflict, match="endpoint"):
            await d.networks.delete(did)
        await d.neutron.delete("ports", port["id"])
        await d.networks.delete(did)
        assert await d.neutron.show("networks", net.neutron_id) is None
