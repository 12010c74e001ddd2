"""Endpoints and --expose groups against the real Neutron (no plugging: see tests/e2e)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from kuryr import naming
from kuryr.backends.binding.base import Binder
from kuryr.domain.security_groups import SecurityGroups
from kuryr.errors import InvalidRequest, NotFound
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.e2e.helpers import Neutron
from tests.integration.domain_helpers import (
    NeverPlugged,
    create,
    create_request,
    domain,
    endpoints,
    no_revoke,
)
from tests.live_mutations import free_cidrs

pytestmark = pytest.mark.stack


async def test_docker_ipam_endpoint_port_and_restart(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did, eid = d.new_id(), d.new_id()
        await d.networks.create(
            create_request(did, "172.31.246.0/24", "172.31.246.1/24", address_space="LocalDefault")
        )
        eps = endpoints(d)
        calls = sum(d.neutron.calls.values())
        answer = await eps.create(create(did, eid, "172.31.246.2/24"))
        assert sum(d.neutron.calls.values()) - calls == 1  # one POST with everything
        [port] = await d.neutron.query("ports", {"device_id": eid})
        assert port["fixed_ips"][0]["ip_address"] == "172.31.246.2"
        assert port["binding:host_id"] == d.host
        assert port["mac_address"].startswith("fa:16:3e")
        assert answer.wire() == {"Interface": {"MacAddress": port["mac_address"]}}
        assert (await eps.create(create(did, eid, "172.31.246.2/24"))).wire() == answer.wire()
        await eps.flush()

        # A restarted daemon (empty memory): CreateEndpoint retried, then DeleteEndpoint.
        restarted = endpoints(d)
        again = await restarted.create(create(did, eid, "172.31.246.2/24"))
        assert again.wire() == answer.wire()
        assert len(await d.neutron.query("ports", {"device_id": eid})) == 1
        info = restarted.oper_info(await restarted.get(eid, did))
        assert info.value["port_id"] == port["id"]
        await restarted.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)
        assert await d.neutron.query("ports", {"device_id": eid}) == []
        await d.networks.delete(did)


async def test_mac_address_from_docker_is_honoured(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        pool = await d.ipam.request_pool(p.RequestPoolRequest())
        await d.networks.create(create_request(did, pool.pool, ""))
        addr = await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
        eps = endpoints(d)
        eid = d.new_id()
        answer = await eps.create(create(did, eid, addr.address, "02:aa:bb:cc:dd:01"))
        assert answer.wire() == {}
        await eps.flush()
        [port] = await d.neutron.query("ports", {"device_id": eid})
        assert port["mac_address"] == "02:aa:bb:cc:dd:01"
        assert port["binding:host_id"] == d.host
        assert port["binding:vif_type"] == "ovs"
        await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
        await d.networks.delete(did)


async def test_expose_group_programmed_and_revoked_idempotently(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did, eid = d.new_id(), d.new_id()
        await d.networks.create(
            create_request(did, "172.31.247.0/24", "172.31.247.1/24", address_space="LocalDefault")
        )
        eps, groups = endpoints(d), SecurityGroups(d.neutron, d.binders)
        await eps.create(create(did, eid, "172.31.247.2/24"))
        endpoint = await eps.get(eid, did)
        default_groups = list(endpoint.port.security_groups)
        options = {
            p.OPT_EXPOSED_PORTS: [{"Proto": 6, "Port": 80}, {"Proto": 17, "Port": 53}],
            p.OPT_PORTMAP: [{"Proto": 6, "Port": 80, "HostPort": 8080}],
        }
        await groups.program(endpoint, options)
        await groups.program(endpoint, options)
        [sg] = await d.neutron.query("security-groups", {"name": naming.expose_sg_name(eid)})
        assert set(naming.id_tags(eid)) <= set(sg["tags"])
        ingress = {
            (r["ethertype"], r["protocol"], r["port_range_min"])
            for r in sg["security_group_rules"]
            if r["direction"] == "ingress"
        }
        assert ingress == {
            (e, proto, port) for e in ("IPv4", "IPv6") for proto, port in (("tcp", 80), ("udp", 53))
        }
        port = await d.neutron.show("ports", endpoint.port_id) or {}
        assert set(port["security_groups"]) == {*default_groups, sg["id"]}

        # Revoke by a restarted daemon, which knows the group only from Neutron.
        restarted = endpoints(d)
        found = await restarted.get(eid, did)
        await groups.revoke(found)
        await groups.revoke(found)
        port = await d.neutron.show("ports", endpoint.port_id) or {}
        assert port["security_groups"] == default_groups
        assert await d.neutron.show("security-groups", sg["id"]) is None
        with pytest.raises(InvalidRequest):
            await groups.program(found, {p.OPT_EXPOSED_PORTS: [{"Proto": 1, "Port": 0}]})
        await restarted.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), groups.revoke)
        await d.networks.delete(did)


class FilteredByVmPort(NeverPlugged):
    """A binder whose ports' traffic another port's groups filter (nested macvlan's)."""

    async def filtering_port(self) -> str:
        return VM_PORT


VM_PORT = "dom-vm-port-of-the-test"


@dataclass
class MacvlanLike:
    def for_vif_type(self, vif_type: str) -> Binder:
        return FilteredByVmPort()


async def test_expose_where_another_port_filters_makes_no_group(
    stack: StackFacts, caplog: pytest.LogCaptureFixture
) -> None:
    """Nested macvlan: the exposure is accepted, no group is made or added (it would filter
    nothing), and one warning names the port whose groups do filter."""
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did, eid = d.new_id(), d.new_id()
        cidr = free_cidrs(Neutron(), 1)[0]
        await d.networks.create(
            create_request(
                did,
                str(cidr),
                f"{cidr.network_address + 1}/24",
                address_space="LocalDefault",
            )
        )
        eps, groups = endpoints(d), SecurityGroups(d.neutron, MacvlanLike())
        try:
            await eps.create(create(did, eid, f"{cidr.network_address + 2}/24"))
            endpoint = await eps.get(eid, did)
            before = list(endpoint.port.security_groups)
            calls = sum(d.neutron.calls.values())
            with caplog.at_level(logging.WARNING, logger="kuryr.domain.security_groups"):
                await groups.program(endpoint, {p.OPT_EXPOSED_PORTS: [{"Proto": 6, "Port": 80}]})
            assert sum(d.neutron.calls.values()) == calls, "Neutron was asked for a group"
            [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert eid[:12] in warning and VM_PORT in warning and "80/tcp" in warning
            assert endpoint.expose_sg is None
            port = await d.neutron.show("ports", endpoint.port_id) or {}
            assert port["security_groups"] == before
            assert (
                await d.neutron.query("security-groups", {"name": naming.expose_sg_name(eid)}) == []
            )
        finally:
            await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), groups.revoke)
            await d.networks.delete(did)


async def test_an_endpoint_named_with_another_network_is_not_that_networks(
    stack: StackFacts,
) -> None:
    """Docker names an endpoint with its network. A request pairing a live endpoint with
    another network's id reaches no endpoint: a DeleteEndpoint of it removes nothing (it
    used to release the live endpoint's port), a Join is refused. The same holds for a
    restarted daemon, which finds the endpoint in Neutron."""
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did, eid, other = d.new_id(), d.new_id(), d.new_id()
        cidr = free_cidrs(Neutron(), 1)[0]
        address = f"{cidr.network_address + 2}/24"
        gateway = f"{cidr.network_address + 1}/24"
        await d.networks.create(
            create_request(did, str(cidr), gateway, address_space="LocalDefault")
        )
        eps = endpoints(d)
        await eps.create(create(did, eid, address))
        await eps.flush()
        [port] = await d.neutron.query("ports", {"device_id": eid})
        try:
            for daemon in (eps, endpoints(d)):
                wrong = p.EndpointRequest(network_id=other, endpoint_id=eid)
                assert await daemon.delete(wrong, no_revoke) is None
                with pytest.raises(NotFound):
                    await daemon.get(eid, other)
                assert await d.neutron.show("ports", port["id"]) is not None
                assert (await daemon.get(eid, did)).port_id == port["id"]
        finally:
            await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), no_revoke)
            await d.networks.delete(did)
        assert await d.neutron.query("ports", {"device_id": eid}) == []
