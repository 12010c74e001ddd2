"""Kuryr IPAM against the real Neutron, in the order dockerd calls it."""

from __future__ import annotations

import ipaddress
import secrets

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import Resource
from kuryr.domain import pool_markers
from kuryr.domain.ports.port import Port
from kuryr.errors import Conflict, InvalidRequest, NotFound
from kuryr.plugin import protocol as p
from tests.conftest import StackFacts
from tests.integration.domain_helpers import Domain, create_request, domain, endpoints, make_domain

pytestmark = pytest.mark.stack

GATEWAY = {p.OPT_REQUEST_ADDRESS_TYPE: p.REQUEST_ADDRESS_TYPE_GATEWAY}


async def pool_snapshot(d: Domain, name: str) -> dict[str, object]:
    [pool] = await d.neutron.query("subnetpools", {"name": name})
    return {k: pool[k] for k in ("id", "prefixes", "default_prefixlen", "revision_number")}


async def request_pool(d: Domain, pool: str = "", **kw: object) -> p.RequestPoolResponse:
    return await d.ipam.request_pool(p.RequestPoolRequest.model_validate({"Pool": pool, **kw}))


async def test_network_without_subnet_from_the_default_pool(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        before = await pool_snapshot(d, "kuryr")
        did, eid = d.new_id(), d.new_id()
        pool = await request_pool(d)
        cidr = ipaddress.IPv4Network(pool.pool)
        assert cidr.prefixlen == 24 and cidr.subnet_of(ipaddress.IPv4Network("10.10.0.0/16"))
        gw = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, options=GATEWAY)
        )
        assert gw.address == f"{cidr.network_address + 1}/24"
        marker = await marker_of(d, pool, before["id"])
        calls = sum(d.neutron.calls.values())
        net = await d.networks.create(create_request(did, pool.pool, gw.address))
        # find, POST net, PUT tags, POST subnet, PUT the subnet's tag (the marker's id)
        assert sum(d.neutron.calls.values()) - calls <= 5
        [subnet] = await d.neutron.query("subnets", {"network_id": net.neutron_id})
        assert subnet["subnetpool_id"] == before["id"]
        assert subnet["cidr"] == pool.pool
        assert subnet["tags"] == [marker["id"]]

        calls = sum(d.neutron.calls.values())
        addr = await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
        assert sum(d.neutron.calls.values()) - calls == 1  # the port POST, nothing else
        ip = addr.address.split("/")[0]
        [port] = await d.neutron.query("ports", {"fixed_ips": f"ip_address={ip}"})
        assert port["device_owner"] == naming.DEVICE_OWNER
        assert port["binding:host_id"] == d.host
        assert port["binding:vif_type"] == "ovs"

        eps = endpoints(d)
        calls = sum(d.neutron.calls.values())
        answer = await eps.create(
            p.CreateEndpointRequest.model_validate(
                {"NetworkID": did, "EndpointID": eid, "Interface": {"Address": addr.address}}
            )
        )
        assert sum(d.neutron.calls.values()) == calls  # answered without Neutron
        assert answer.wire() == {"Interface": {"MacAddress": port["mac_address"]}}
        await eps.flush()
        port = await d.neutron.show("ports", port["id"]) or {}
        assert port["device_id"] == eid
        assert port["name"] == naming.port_name(eid)
        assert set(naming.id_tags(eid)) <= set(port["tags"])

        ep_req = p.EndpointRequest(network_id=did, endpoint_id=eid)
        await eps.delete(ep_req, _no_revoke)
        assert await d.neutron.show("ports", port["id"]) is None
        await eps.delete(ep_req, _no_revoke)  # unknown endpoint now: success
        calls = sum(d.neutron.calls.values())
        await d.ipam.release_address(p.ReleaseAddressRequest(pool_id=pool.pool_id, address=ip))
        await d.ipam.release_address(
            p.ReleaseAddressRequest(pool_id=pool.pool_id, address=gw.address.split("/")[0])
        )
        assert sum(d.neutron.calls.values()) == calls
        # A ReleasePool of the marker with another CIDR finds the subnet it serves: kept.
        other = f"{pool.pool_id}/10.10.254.0/24"
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=other))
        assert await d.neutron.show("subnetpools", marker["id"]) is not None
        await d.networks.delete(did)
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
        assert await d.neutron.show("networks", net.neutron_id) is None
        assert await d.neutron.show("subnetpools", marker["id"]) is None
        assert await pool_snapshot(d, "kuryr") == before


async def _no_revoke(_: object) -> None:
    return None


async def marker_of(d: Domain, pool: p.RequestPoolResponse, shared_id: object) -> Resource:
    """A pool from a shared subnetpool answers a bare PoolID, kuryr-libnetwork's form: the id
    of a marker subnetpool holding only the pool's CIDR, that names the shared one."""
    assert naming.is_bare_pool_id(pool.pool_id), pool.pool_id
    marker = await d.neutron.show("subnetpools", pool.pool_id)
    assert marker is not None
    assert marker["name"] == naming.subnetpool_name(pool.pool)
    assert marker["prefixes"] == [pool.pool]
    assert pool_markers.shared_pool_of(marker) == shared_id
    assert await d.neutron.query("subnets", {"subnetpool_id": marker["id"]}) == []
    return marker


async def test_two_pools_at_once_differ(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        a = await request_pool(d)
        b = await request_pool(d)
        assert a.pool != b.pool
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=a.pool_id))
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=b.pool_id))


async def test_explicit_subnet_inside_the_default_pool(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        before = await pool_snapshot(d, "kuryr")
        pool = await request_pool(d, "10.10.251.0/24")
        assert pool.pool == "10.10.251.0/24"
        marker = await marker_of(d, pool, before["id"])
        gw = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, address="10.10.251.254", options=GATEWAY)
        )
        assert gw.address == "10.10.251.254/24"
        did = d.new_id()
        net = await d.networks.create(create_request(did, pool.pool, gw.address))
        [subnet] = await d.neutron.query("subnets", {"network_id": net.neutron_id})
        assert subnet["allocation_pools"] == [{"start": "10.10.251.1", "end": "10.10.251.253"}]
        with pytest.raises(Conflict):  # the same CIDR again: Neutron would refuse it later
            await request_pool(d, "10.10.251.0/24")
        addr = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, address="10.10.251.200")
        )
        assert addr.address == "10.10.251.200/24"
        # A restarted daemon asked again for the address takes over its own free port.
        restarted = make_domain(d.neutron, d.host)
        again = await restarted.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, address="10.10.251.200")
        )
        assert again.address == addr.address
        assert len(await d.neutron.query("ports", {"fixed_ips": "ip_address=10.10.251.200"})) == 1
        # An address held by a live endpoint's port is a conflict.
        busy = await d.neutron.create(
            "ports",
            {
                "network_id": net.neutron_id,
                "fixed_ips": [{"ip_address": "10.10.251.201"}],
                "device_owner": naming.DEVICE_OWNER,
                "device_id": "dom-endpoint",
            },
        )
        with pytest.raises(Conflict):
            await d.ipam.request_address(
                p.RequestAddressRequest(pool_id=pool.pool_id, address="10.10.251.201")
            )
        await d.neutron.delete("ports", busy["id"])
        await d.ipam.release_address(
            p.ReleaseAddressRequest(pool_id=pool.pool_id, address="10.10.251.200")
        )
        assert await d.neutron.query("ports", {"fixed_ips": "ip_address=10.10.251.200"}) == []
        await d.networks.delete(did)
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
        assert await d.neutron.show("subnetpools", marker["id"]) is None
        assert await pool_snapshot(d, "kuryr") == before


async def test_ip_range_inside_the_default_pool_gets_a_pool_of_its_own(stack: StackFacts) -> None:
    """kuryr-libnetwork's --ip-range: the range is the pool Docker gets and the subnet's CIDR,
    with ``kuryrPool-<range>`` of its own even inside the default pool's prefix (which stays
    untouched). The slice subnet is in no subnetpool, so other hosts' slices can join its
    network (Neutron allows one pool per network and IP version); the pool's id tag finds it."""
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        before = await pool_snapshot(d, "kuryr")
        pool = await request_pool(d, "10.10.0.0/16", SubPool="10.10.252.128/25")
        assert pool.pool == "10.10.252.128/25"
        [own] = await d.neutron.query("subnetpools", {"name": "kuryrPool-10.10.252.128/25"})
        assert own["prefixes"] == ["10.10.252.128/25"]
        assert int(own["default_prefixlen"]) == 25
        with pytest.raises(InvalidRequest, match=r"gateway 10\.10\.0\.1 is not in pool"):
            await d.ipam.request_address(
                p.RequestAddressRequest(pool_id=pool.pool_id, address="10.10.0.1", options=GATEWAY)
            )
        gw = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, options=GATEWAY)
        )
        assert gw.address == "10.10.252.129/25"
        did = d.new_id()
        net = await d.networks.create(create_request(did, pool.pool, gw.address))
        [subnet] = await d.neutron.query("subnets", {"network_id": net.neutron_id})
        assert subnet["cidr"] == "10.10.252.128/25"
        assert subnet["name"] == "kuryr-subnet-10.10.252.128/25"
        assert subnet["subnetpool_id"] is None
        assert subnet["tags"] == [own["id"]]
        assert subnet["allocation_pools"] == [{"start": "10.10.252.130", "end": "10.10.252.254"}]
        addr = await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
        ip = ipaddress.ip_interface(addr.address)
        assert ip in ipaddress.ip_network("10.10.252.128/25") and ip.network.prefixlen == 25
        await d.ipam.release_address(
            p.ReleaseAddressRequest(pool_id=pool.pool_id, address=str(ip.ip))
        )
        await d.networks.delete(did)
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
        assert await d.neutron.show("subnetpools", own["id"]) is None
        assert await pool_snapshot(d, "kuryr") == before


async def test_explicit_subnet_outside_gets_a_kuryr_pool_deleted_with_the_network(
    stack: StackFacts,
) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        pool = await request_pool(d, "10.77.3.0/24")
        [sp] = await d.neutron.query("subnetpools", {"name": "kuryrPool-10.77.3.0/24"})
        # A pool made for this one CIDR: its bare uuid, as kuryr-libnetwork writes the PoolID.
        assert pool.pool_id == sp["id"]
        did = d.new_id()
        await d.networks.create(create_request(did, pool.pool, "10.77.3.1/24"))
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
        assert await d.neutron.show("subnetpools", sp["id"]) is not None  # subnet still uses it
        await d.networks.delete(did)
        assert await d.neutron.show("subnetpools", sp["id"]) is None


async def test_dual_stack_default_pools(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        v4 = await request_pool(d)
        v6 = await request_pool(d, V6=True)
        net6 = ipaddress.ip_network(v6.pool)
        assert net6.version == 6 and net6.prefixlen == 64
        gw4 = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=v4.pool_id, options=GATEWAY)
        )
        gw6 = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=v6.pool_id, options=GATEWAY)
        )
        did, eid = d.new_id(), d.new_id()
        net = await d.networks.create(
            create_request(
                did, v4.pool, gw4.address, None, "no_address_space", v6.pool, gw6.address
            )
        )
        assert len(net.subnets) == 2
        a4 = await d.ipam.request_address(p.RequestAddressRequest(pool_id=v4.pool_id))
        a6 = await d.ipam.request_address(p.RequestAddressRequest(pool_id=v6.pool_id))
        eps = endpoints(d)
        await eps.create(
            p.CreateEndpointRequest.model_validate(
                {
                    "NetworkID": did,
                    "EndpointID": eid,
                    "Interface": {"Address": a4.address, "AddressIPv6": a6.address},
                }
            )
        )
        await eps.flush()
        [port] = await d.neutron.query("ports", {"device_id": eid})
        assert sorted(f["ip_address"] for f in port["fixed_ips"]) == sorted(
            [a4.address.split("/")[0], a6.address.split("/")[0]]
        )
        await eps.delete(p.EndpointRequest(network_id=did, endpoint_id=eid), _no_revoke)
        assert (
            await d.neutron.query(
                "ports", {"network_id": net.neutron_id, "device_owner": naming.DEVICE_OWNER}
            )
            == []
        )
        for pool in (v4, v6):
            await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
        await d.networks.delete(did)


async def test_bad_pool_ids_and_addresses(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        with pytest.raises(NotFound):
            await d.ipam.request_address(p.RequestAddressRequest(pool_id="feaspool-10.30.0.0/24"))
        with pytest.raises(NotFound):
            await d.ipam.release_pool(p.ReleasePoolRequest(pool_id="nope"))
        pool = await request_pool(d)
        with pytest.raises(InvalidRequest):
            await d.ipam.request_address(
                p.RequestAddressRequest(pool_id=pool.pool_id, address="192.0.2.1")
            )
        with pytest.raises(NotFound):  # no network (subnet) yet
            await d.ipam.request_address(p.RequestAddressRequest(pool_id=pool.pool_id))
        with pytest.raises(NotFound):
            await request_pool(d, Options={"neutron.pool.name": "dom-no-such-pool"})
        await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))


@pytest.mark.parametrize("named_in", ["ipam", "network"])
async def test_existing_subnet_of_a_pool_is_adopted_not_refused(
    stack: StackFacts, named_in: str
) -> None:
    """``--subnet <cidr>`` with ``neutron.subnet.uuid`` naming an existing subnet of that CIDR:
    RequestPool answers with the subnet's own pool (the overlap is the subnet itself; with the
    option only on the network, a subnet Kuryr did not make); CreateNetwork uses it."""
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        prefix = f"10.{secrets.randbelow(50) + 200}.0.0/16"
        pool = await d.neutron.create(
            "subnetpools",
            {
                "name": f"hrd-pool-{secrets.token_hex(3)}",
                "prefixes": [prefix],
                "default_prefixlen": 24,
            },
        )
        net = await d.neutron.create("networks", {"name": f"hrd-net-{secrets.token_hex(3)}"})
        subnet = await d.neutron.create(
            "subnets",
            {
                "name": f"hrd-subnet-{secrets.token_hex(3)}",
                "network_id": net["id"],
                "ip_version": 4,
                "subnetpool_id": pool["id"],
                "prefixlen": 24,
            },
        )
        adopt = {"neutron.subnet.uuid": subnet["id"]}
        did = d.new_id()
        try:
            # kuryr-libnetwork's way names the pool as IPAM option, the subnet as network one.
            ipam_opts = adopt if named_in == "ipam" else {"neutron.pool.uuid": pool["id"]}
            answer = await request_pool(d, subnet["cidr"], Options=ipam_opts)
            marker = await marker_of(d, answer, pool["id"])
            gw = await d.ipam.request_address(
                p.RequestAddressRequest(pool_id=answer.pool_id, options=GATEWAY)
            )
            created = await d.networks.create(
                create_request(
                    did, answer.pool, gw.address, {"neutron.net.uuid": net["id"], **adopt}
                )
            )
            assert [s.id for s in created.subnets] == [subnet["id"]]
            addr = await d.ipam.request_address(p.RequestAddressRequest(pool_id=answer.pool_id))
            assert ipaddress.ip_interface(addr.address) in ipaddress.ip_network(subnet["cidr"])
            await d.ipam.release_address(
                p.ReleaseAddressRequest(
                    pool_id=answer.pool_id, address=addr.address.partition("/")[0]
                )
            )
            await d.networks.delete(did)
            await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=answer.pool_id))
            kept = await d.neutron.show("subnets", subnet["id"])
            assert kept is not None and marker["id"] not in kept["tags"]
            assert await d.neutron.show("subnetpools", marker["id"]) is None
        finally:
            for port in await d.neutron.query("ports", {"network_id": net["id"]}):
                await d.neutron.delete("ports", port["id"])
            await d.neutron.delete("networks", net["id"])
            await d.neutron.delete("subnetpools", pool["id"])


async def test_existing_subnet_of_another_cidr_is_refused(stack: StackFacts) -> None:
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        net = await d.neutron.create("networks", {"name": f"hrd-net-{secrets.token_hex(3)}"})
        try:
            subnet = await d.neutron.create(
                "subnets",
                {"network_id": net["id"], "ip_version": 4, "cidr": "192.168.233.0/24"},
            )
            with pytest.raises(InvalidRequest):
                await request_pool(
                    d, "192.168.234.0/24", Options={"neutron.subnet.uuid": subnet["id"]}
                )
        finally:
            await d.neutron.delete("networks", net["id"])


async def test_an_address_request_for_the_gateway_is_refused_and_makes_no_port(
    stack: StackFacts,
) -> None:
    """Only the gateway request may name the gateway: any other is refused, as Docker's own
    IPAM refuses an address in use. Accepted, it made a port holding the gateway's address
    that ReleaseAddress (which skips the gateway) never deleted: a leaked port."""
    async with domain(stack.neutron_url, stack.chassis_hostname) as d:
        did = d.new_id()
        pool = await request_pool(d)
        gw = await d.ipam.request_address(
            p.RequestAddressRequest(pool_id=pool.pool_id, options=GATEWAY)
        )
        net = await d.networks.create(create_request(did, pool.pool, gw.address))
        gateway = gw.address.split("/")[0]
        try:
            request = p.RequestAddressRequest(pool_id=pool.pool_id, address=gateway)
            with pytest.raises(Conflict, match="gateway"):
                await d.ipam.request_address(request)
            ports = await d.neutron.query("ports", {"network_id": net.neutron_id})
            assert [pt for pt in ports if gateway in {ip for ip in Port.from_neutron(pt).ips}] == []
            again = await d.ipam.request_address(
                p.RequestAddressRequest(pool_id=pool.pool_id, options=GATEWAY)
            )
            assert again.address == gw.address
        finally:
            await d.ipam.release_pool(p.ReleasePoolRequest(pool_id=pool.pool_id))
            await d.networks.delete(did)
