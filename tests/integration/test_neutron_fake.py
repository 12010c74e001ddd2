"""The in-memory Neutron (tests/fakes/neutron.py) against the real one: one scenario, run on
both through :class:`kuryr.backends.neutron_api.NeutronApi`, gives the same shapes (fields and
their types, statuses, binding, error statuses and types, what filters find). The domain unit
tests are only as good as the fake: a Neutron upgrade that changes one of these shows here."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

import pytest

from kuryr.backends.neutron_api import NeutronApi, Resource
from tests.conftest import StackFacts
from tests.fakes.neutron import FakeNeutron
from tests.integration.domain_helpers import neutron_client
from tests.integration.neutron_shapes import Shapes, refusal, shape

pytestmark = pytest.mark.stack

PREFIX = "fakecmp-"


async def free_cidrs(neutron: NeutronApi) -> tuple[str, str]:
    """A /28 for the network's subnet and a /24 for the scenario's own subnetpool."""
    used = [ipaddress.ip_network(s["cidr"]) for s in await neutron.query("subnets")]
    free = [
        n
        for n in ipaddress.ip_network("10.199.0.0/16").subnets(new_prefix=24)
        if not any(n.overlaps(u) for u in used)
    ]
    return str(next(free[0].subnets(new_prefix=28))), str(free[1])


async def scenario(neutron: NeutronApi, host: str, cidr: str, pool_cidr: str) -> Shapes:
    seen: Shapes = []
    name = PREFIX + secrets.token_hex(4)
    tagged = neutron.create("networks", {"name": name, "tags": ["x"]})
    seen.append(("tags in a POST", await refusal(tagged)))
    net = await neutron.create("networks", {"name": name})
    try:
        await _ports(neutron, seen, net, host, cidr)
        await _subnetpools(neutron, seen, net, pool_cidr, name)
        await _routers(neutron, seen, name)
    finally:
        for router in await neutron.query("routers", {"name": name}):
            for port in await neutron.query("ports", {"device_id": router["id"]}):
                for fixed in port["fixed_ips"]:
                    await neutron.remove_router_interface(router["id"], fixed["subnet_id"])
            await neutron.delete("routers", router["id"])
        for port in await neutron.query("ports", {"network_id": net["id"]}):
            if not port["device_owner"].startswith("network:"):
                await neutron.delete("ports", port["id"])
        for network in await neutron.query("networks", {"name": name}):
            await neutron.delete("networks", network["id"])
        for pool in await neutron.query("subnetpools", {"name": name}):
            await neutron.delete("subnetpools", pool["id"])
    return seen


async def _ports(neutron: NeutronApi, seen: Shapes, net: Resource, host: str, cidr: str) -> None:
    seen.append(("network", shape(net)))
    subnet = await neutron.create(
        "subnets", {"network_id": net["id"], "ip_version": 4, "cidr": cidr}
    )
    seen.append(("subnet", shape(subnet)))
    hosts = [str(h) for h in ipaddress.ip_network(cidr).hosts()]
    seen.append(("allocation pools", subnet["allocation_pools"]))
    seen.append(("gateway", subnet["gateway_ip"] == hosts[0]))
    [meta] = await neutron.query("ports", {"network_id": net["id"]})
    seen.append(
        ("metadata port", meta["device_owner"], meta["fixed_ips"][0]["ip_address"] == hosts[1])
    )
    fixed = {"subnet_id": subnet["id"], "ip_address": hosts[4]}
    bound = {"network_id": net["id"], "binding:host_id": host, "device_owner": "compute:kuryr"}
    port = await neutron.create("ports", {**bound, "fixed_ips": [fixed]})
    seen.append(("port", shape(port)))
    seen.append(("bound", port["binding:vif_type"], port["status"], port["mac_address"][:8]))
    tagged = await neutron.create_bulk("ports", [{"network_id": net["id"], "tags": ["x"]}])
    seen.append(("tags in a port POST", [p["tags"] for p in tagged]))
    await neutron.delete("ports", tagged[0]["id"])
    unbound = await neutron.create("ports", {"network_id": net["id"]})
    seen.append(("unbound", unbound["binding:vif_type"], len(unbound["fixed_ips"])))
    again = neutron.create("ports", {"network_id": net["id"], "fixed_ips": [fixed]})
    seen.append(("IP taken", await refusal(again)))
    outside = {"subnet_id": subnet["id"], "ip_address": "192.0.2.1"}
    seen.append(
        ("IP outside", await refusal(neutron.create("ports", {**bound, "fixed_ips": [outside]})))
    )
    before = len(await neutron.query("ports", {"network_id": net["id"]}))
    lost = {**bound, "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": hosts[6]}]}
    bulk = [lost, {**bound, "fixed_ips": [fixed]}]
    seen.append(("bulk with a taken IP", await refusal(neutron.create_bulk("ports", bulk))))
    after = len(await neutron.query("ports", {"network_id": net["id"]}))
    seen.append(("bulk made none", after == before))
    seen.append(("its other address leaked", await refusal(neutron.create("ports", lost))))
    any_ip = {**bound, "fixed_ips": [{"subnet_id": subnet["id"]}]}
    made = await neutron.create_bulk("ports", [any_ip, any_ip])
    seen.append(("bulk", [p["binding:vif_type"] for p in made]))
    mac = {"network_id": net["id"], "mac_address": port["mac_address"]}
    seen.append(("MAC in use", await refusal(neutron.create("ports", mac))))
    new_mac = neutron.update("ports", port["id"], {"mac_address": "fa:16:3e:00:00:01"})
    seen.append(("MAC of a bound port", await refusal(new_mac)))
    await _revisions(neutron, seen, port)
    await _filters(neutron, seen, net, subnet, port, hosts[4])
    seen.append(("subnet full", *await _fill(neutron, net["name"])))
    seen.append(("network in use", await refusal(neutron.delete("networks", net["id"]))))


async def _fill(neutron: NeutronApi, name: str) -> tuple[int, tuple[int, str]]:
    """Ports made on a new /29 without DHCP until Neutron refuses one, and the refusal."""
    net = await neutron.create("networks", {"name": name})
    cidr = "192.168.251.0/29"
    attrs = {"network_id": net["id"], "ip_version": 4, "cidr": cidr, "enable_dhcp": False}
    await neutron.create("subnets", attrs)
    made = 0
    while (refused := await refusal(neutron.create("ports", {"network_id": net["id"]})))[0] == 0:
        made += 1
    for port in await neutron.query("ports", {"network_id": net["id"]}):
        if not port["device_owner"].startswith("network:"):
            await neutron.delete("ports", port["id"])
    return made, refused


async def _revisions(neutron: NeutronApi, seen: Shapes, port: Resource) -> None:
    current = await neutron.show("ports", port["id"]) or {}
    revision = int(current["revision_number"])
    stale = neutron.update("ports", port["id"], {"name": "x"}, revision=revision - 1)
    seen.append(("stale update", await refusal(stale)))
    updated = await neutron.update("ports", port["id"], {"name": "y"}, revision=revision)
    seen.append(("update bumps the revision", updated["revision_number"] > revision))
    tags = await neutron.set_tags("ports", port["id"], [f"t{i:02}" for i in range(51)])
    seen.append(("51 tags", len(tags)))
    tagged = await neutron.show("ports", port["id"]) or {}
    seen.append(("tags bump the revision", tagged["revision_number"] > updated["revision_number"]))
    stale_delete = neutron.delete("ports", port["id"], revision=revision)
    seen.append(("stale delete", await refusal(stale_delete)))
    seen.append(("show a missing port", await neutron.show("ports", secrets.token_hex(16))))
    missing = neutron.update("ports", "00000000-0000-4000-8000-000000000000", {"name": "z"})
    seen.append(("update a missing port", await refusal(missing)))


async def _filters(
    neutron: NeutronApi, seen: Shapes, net: Resource, subnet: Resource, port: Resource, ip: str
) -> None:
    await neutron.set_tags("ports", port["id"], ["a", "b"])
    on_net = {"network_id": net["id"]}

    async def ids(params: dict[str, Any]) -> list[bool]:
        found = await neutron.query("ports", {**on_net, **params})
        return sorted(p.get("id") == port["id"] for p in found)

    seen.append(("tags all", await ids({"tags": "a,b"}), await ids({"tags": "a,c"})))
    seen.append(("tags-any", await ids({"tags-any": "c,b"})))
    seen.append(("not-tags", await ids({"not-tags": "a"})))
    by_ip = {"fixed_ips": [f"subnet_id={subnet['id']}", f"ip_address={ip}"]}
    seen.append(("fixed_ips", await ids(by_ip)))
    unused = str(ipaddress.ip_address(ip) + 100)
    any_of = {"fixed_ips": [f"ip_address={unused}", f"ip_address={ip}"]}
    seen.append(("fixed_ips, any of several addresses", await ids(any_of)))
    seen.append(("empty filter", await ids({"device_id": ""})))
    seen.append(("id list", await ids({"id": [port["id"], secrets.token_hex(16)]})))
    fields = await neutron.query("ports", {"id": port["id"], "fields": ["id", "status"]})
    seen.append(("fields", [sorted(f) for f in fields]))
    seen.append(("unknown filter", await refusal(neutron.query("ports", {"no_such": "x"}))))


async def _subnetpools(
    neutron: NeutronApi, seen: Shapes, net: Resource, pool_cidr: str, name: str
) -> None:
    pool = await neutron.create(
        "subnetpools", {"name": name, "prefixes": [pool_cidr], "default_prefixlen": 26}
    )
    seen.append(("subnetpool", shape(pool)))
    attrs = {"network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}
    seen.append(("subnets of two pools", await refusal(neutron.create("subnets", attrs))))
    other = await neutron.create("networks", {"name": name})
    attrs["network_id"] = other["id"]
    first = await neutron.create("subnets", attrs)
    seen.append(
        (
            "allocated",
            first["cidr"] == str(next(ipaddress.ip_network(pool_cidr).subnets(new_prefix=26))),
        )
    )
    taken = neutron.create("subnets", {**attrs, "cidr": first["cidr"]})
    seen.append(("CIDR taken in the pool", await refusal(taken)))
    seen.append(("subnetpool in use", await refusal(neutron.delete("subnetpools", pool["id"]))))
    await neutron.delete("subnets", first["id"])


async def _routers(neutron: NeutronApi, seen: Shapes, name: str) -> None:
    router = await neutron.create("routers", {"name": name})
    net = await neutron.create("networks", {"name": name})
    attrs = {"network_id": net["id"], "ip_version": 4, "cidr": "192.168.252.0/28"}
    subnet = await neutron.create("subnets", attrs)
    answer = await neutron.add_router_interface(router["id"], subnet["id"])
    seen.append(("interface", sorted(answer), answer["subnet_ids"] == [subnet["id"]]))
    [port] = await neutron.query("ports", {"device_id": router["id"]})
    gateway = [{"subnet_id": subnet["id"], "ip_address": subnet["gateway_ip"]}]
    seen.append(("its port", port["device_owner"], port["fixed_ips"] == gateway))
    again = neutron.add_router_interface(router["id"], subnet["id"])
    seen.append(("attached twice", await refusal(again)))
    seen.append(("subnet on a router", await refusal(neutron.delete("subnets", subnet["id"]))))
    seen.append(("network on a router", await refusal(neutron.delete("networks", net["id"]))))
    seen.append(
        ("router with an interface", await refusal(neutron.delete("routers", router["id"])))
    )
    removed = await neutron.remove_router_interface(router["id"], subnet["id"])
    seen.append(
        ("detached", removed, await neutron.remove_router_interface(router["id"], subnet["id"]))
    )
    missing = "00000000-0000-4000-8000-000000000000"
    seen.append(("no such router", await neutron.remove_router_interface(missing, subnet["id"])))
    await neutron.delete("routers", router["id"])
    await neutron.delete("networks", net["id"])


async def test_the_fake_neutron_answers_as_the_real_one(stack: StackFacts) -> None:
    real = neutron_client(stack.neutron_url)
    cidr, pool_cidr = await free_cidrs(real)
    expected = await scenario(real, stack.chassis_hostname, cidr, pool_cidr)
    # The fake as the stack's ML2 is configured (kuryr.stack.neutron turns on the extension
    # driver tag_ports_during_bulk_creation).
    fake = FakeNeutron(post_tags=True)
    found = await scenario(fake, stack.chassis_hostname, cidr, pool_cidr)
    differences = [(e, f) for e, f in zip(expected, found, strict=True) if e != f]
    assert differences == [], "\n".join(f"real {e}\nfake {f}" for e, f in differences)
