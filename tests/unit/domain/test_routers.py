"""A Docker network's way out: the subnets Kuryr makes go on the router ``[neutron] router``
or ``-o neutron.router`` names, never an ``--internal`` network's, and come off it when they
go; what Kuryr did not make or attach is left as it is, and the router is never deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import NeutronError, Resource
from kuryr.domain.routers import OPT_ROUTER
from kuryr.errors import NotFound
from kuryr.plugin import protocol as p
from tests.fakes.daemon import Daemon, Net, daemon, default_subnetpools, docker_id
from tests.fakes.neutron import FakeNeutron
from tests.fakes.neutron_schema import ROUTER_INTERFACE_OWNER

ROUTER = "kuryr-router"


def with_router() -> tuple[FakeNeutron, Resource]:
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    return neutron, neutron.make("routers", {"name": ROUTER})


def interfaces(d: Daemon, router: Resource) -> dict[str, str]:
    """subnet id -> the address the router holds on it."""
    ports = d.neutron.rows(
        "ports", {"device_id": router["id"], "device_owner": ROUTER_INTERFACE_OWNER}
    )
    return {f["subnet_id"]: f["ip_address"] for pt in ports for f in pt["fixed_ips"]}


def gateway(d: Daemon, net: Net) -> str:
    subnet = d.neutron.get("subnets", net.subnet_id)
    assert subnet is not None
    return str(subnet["gateway_ip"])


async def test_the_configured_router_takes_each_new_subnets_gateway_until_the_network_goes(
    tmp_path: Path,
) -> None:
    neutron, router = with_router()
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        kuryr_ipam = await d.kuryr_network()
        docker_ipam = await d.docker_network("10.50.7.0/24")

        assert interfaces(d, router) == {
            kuryr_ipam.subnet_id: gateway(d, kuryr_ipam),
            docker_ipam.subnet_id: "10.50.7.1",
        }
        subnet = d.neutron.get("subnets", kuryr_ipam.subnet_id)
        assert subnet is not None and naming.router_tag(router["id"]) in subnet["tags"]

        await d.remove_network(kuryr_ipam)
        await d.remove_network(docker_ipam)

        assert interfaces(d, router) == {}
        assert d.neutron.get("networks", kuryr_ipam.neutron_id) is None
        assert d.neutron.get("networks", docker_ipam.neutron_id) is None
        assert d.neutron.get("routers", router["id"]) is not None


async def test_the_option_names_a_router_per_network_by_name_or_id(tmp_path: Path) -> None:
    neutron, router = with_router()
    async with daemon(tmp_path, neutron=neutron) as d:
        by_name = await d.kuryr_network(options={OPT_ROUTER: ROUTER})
        by_id = await d.kuryr_network(options={OPT_ROUTER: router["id"]})
        without = await d.kuryr_network()

        assert set(interfaces(d, router)) == {by_name.subnet_id, by_id.subnet_id}
        tags = (d.neutron.get("subnets", without.subnet_id) or {})["tags"]
        assert naming.routers_of(tags) == []


async def test_internal_networks_and_an_empty_option_stay_off_the_router(tmp_path: Path) -> None:
    neutron, router = with_router()
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        await d.kuryr_network(internal=True)
        await d.kuryr_network(options={OPT_ROUTER: ROUTER}, internal=True)
        await d.docker_network("10.50.8.0/24", internal=True)
        await d.kuryr_network(options={OPT_ROUTER: ""})

        assert interfaces(d, router) == {}


async def test_an_unknown_router_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    neutron, _ = with_router()
    async with daemon(tmp_path, neutron=neutron) as d:
        before = {r: len(d.neutron.rows(r)) for r in ("networks", "subnets", "ports")}

        with pytest.raises(NotFound, match="no-such-router"):
            await d.docker_network("10.50.9.0/24", options={OPT_ROUTER: "no-such-router"})

        assert {r: len(d.neutron.rows(r)) for r in before} == before


async def test_a_failed_attachment_leaves_nothing_half_made(tmp_path: Path) -> None:
    neutron, router = with_router()
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        networks = len(d.neutron.rows("networks"))
        d.neutron.faults.fail("PUT", "routers", status=500)

        with pytest.raises(NeutronError, match="PUT /routers"):
            await d.docker_network("10.50.10.0/24")

        assert len(d.neutron.rows("networks")) == networks
        assert d.neutron.rows("subnets", {"cidr": "10.50.10.0/24"}) == []
        assert interfaces(d, router) == {}


async def adopt(d: Daemon, theirs: Resource, cidr: str) -> Net:
    """``docker network create -d kuryr --subnet cidr -o neutron.net.name=<theirs>``."""
    did = docker_id()
    data = {"AddressSpace": "LocalDefault", "Pool": cidr, "Gateway": cidr.replace("0/24", "1/32")}
    options = {p.OPT_GENERIC: {"neutron.net.name": theirs["name"]}}
    request = {"NetworkID": did, "IPv4Data": [data], "Options": options}
    await d.network.create_network(p.CreateNetworkRequest.model_validate(request))
    [subnet] = d.neutron.rows("subnets", {"network_id": theirs["id"], "cidr": cidr})
    return Net(did, cidr, cidr, theirs["id"], subnet["id"])


async def test_an_adopted_network_gets_only_the_subnets_kuryr_made_attached_and_detached(
    tmp_path: Path,
) -> None:
    neutron, router = with_router()
    theirs = neutron.make("networks", {"name": "theirs"})

    def subnet(cidr: str) -> Resource:
        attrs = {"network_id": theirs["id"], "cidr": cidr, "ip_version": 4, "name": "theirs"}
        return neutron.make("subnets", attrs)

    existing = subnet("10.60.1.0/24")
    attached_by_hand = subnet("10.60.2.0/24")
    neutron.store.add_router_interface(router["id"], attached_by_hand["id"])
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        on_existing = await adopt(d, theirs, "10.60.1.0/24")
        made = await adopt(d, theirs, "10.60.3.0/24")

        assert on_existing.subnet_id == existing["id"]
        assert set(interfaces(d, router)) == {attached_by_hand["id"], made.subnet_id}

        await d.remove_network(made)
        await d.remove_network(on_existing)

        assert set(interfaces(d, router)) == {attached_by_hand["id"]}
        assert d.neutron.get("subnets", made.subnet_id) is None
        assert d.neutron.get("subnets", existing["id"]) is not None
        assert d.neutron.get("networks", theirs["id"]) is not None


async def test_a_subnet_tagged_but_never_attached_still_goes(tmp_path: Path) -> None:
    # The daemon died between the tag and the attachment: the removal finds no interface.
    neutron, router = with_router()
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        net = await d.kuryr_network()
        d.neutron.store.remove_router_interface(router["id"], net.subnet_id)

        await d.remove_network(net)

        assert d.neutron.get("networks", net.neutron_id) is None
        assert d.neutron.get("routers", router["id"]) is not None


async def test_create_network_again_puts_a_tagged_subnet_back_on_its_router(tmp_path: Path) -> None:
    # Docker retried, or the daemon died after the tag and before the attachment.
    neutron, router = with_router()
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        data = {"AddressSpace": "LocalDefault", "Pool": "10.50.11.0/24", "Gateway": "10.50.11.1/32"}
        request = p.CreateNetworkRequest.model_validate(
            {"NetworkID": docker_id(), "IPv4Data": [data], "Options": {}}
        )
        await d.network.create_network(request)
        [subnet] = d.neutron.rows("subnets", {"cidr": "10.50.11.0/24"})
        d.neutron.store.remove_router_interface(router["id"], subnet["id"])

        await d.network.create_network(request)
        await d.network.create_network(request)

        assert interfaces(d, router) == {subnet["id"]: "10.50.11.1"}
