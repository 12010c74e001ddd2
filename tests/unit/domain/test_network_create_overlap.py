"""CreateNetwork's Neutron calls that need nothing of each other run side by side: the new
network's tag PUT alongside its subnet POST, the router look-up alongside the network's. A
failure of one side is raised only once the other side ended, and everything either side made
is undone (kuryr.domain.together.both). RequestPool looks for no subnet in a subnetpool it has
just made. On the in-memory Neutron, whose ``faults`` hold or refuse single calls."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import NeutronError
from kuryr.driver import KuryrNetworkDriver
from kuryr.errors import Conflict, NotFound
from kuryr.plugin import protocol as p
from tests.fakes.daemon import Daemon, daemon, default_subnetpools, eventually, intents
from tests.fakes.neutron import FakeNeutron

CIDR = "10.181.7.0/24"  # outside the default subnetpool: RequestPool makes kuryrPool-<cidr>
ROUTER = "n18c-router"
# The synchronous calls of a Kuryr IPAM create (RequestPool, then CreateNetwork).
CREATE_PATH = [
    ("GET", "subnetpools"), ("POST", "subnetpools"), ("GET", "subnets"), ("GET", "networks"),
    ("POST", "networks"), ("PUT", "networks"), ("POST", "subnets"), ("PUT", "subnets"),
]  # fmt: skip


def on_create_path(calls: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """The calls of ``calls`` of the kinds a create makes (background refills make ports)."""
    return Counter({k: n for k, n in calls.items() if k in CREATE_PATH})


def tagged(d: Daemon) -> list[str]:
    return [n["id"] for n in d.neutron.rows("networks") if naming.tag_claims(n.get("tags") or [])]


def left(d: Daemon) -> list[str]:
    """What a failed create must not leave: networks, subnets, intents in flight."""
    return [r["id"] for kind in ("networks", "subnets") for r in d.neutron.rows(kind)]


async def test_the_subnet_is_made_while_the_network_is_tagged(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        gate = d.neutron.faults.hold("PUT", "networks", times=1)
        creating = asyncio.create_task(d.kuryr_network(CIDR))
        # The subnet's POST is answered while the network's tag PUT is still held.
        await eventually(lambda: len(d.neutron.rows("subnets")) == 1, "the subnet is made")
        assert not creating.done()
        assert tagged(d) == []
        gate.set()
        net = await creating
        [network] = d.neutron.rows("networks")
        assert naming.id_from_tags(network["tags"]) == net.docker_id
        subnet = d.neutron.get("subnets", net.subnet_id)
        assert subnet is not None and net.pool_id in subnet["tags"]
        # The domain keeps the tags Neutron answered (its saved copy finds it after a restart).
        assert isinstance(d.network, KuryrNetworkDriver)
        found = await d.network.networks.get(net.docker_id)
        assert sorted(found.tags) == sorted(network["tags"])


async def test_the_create_path_makes_seven_calls_and_no_subnet_look_up_in_a_new_pool(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        await d.kuryr_network("10.181.8.0/24")  # the default subnetpool is looked up once
        before = Counter(d.neutron.calls)
        await d.kuryr_network(CIDR)
        made = on_create_path(d.neutron.calls - before)
        # GET /subnets?subnetpool_id= of a subnetpool RequestPool has just made is gone.
        assert made == Counter({k: 1 for k in CREATE_PATH if k != ("GET", "subnets")})


async def test_an_existing_pool_is_still_searched_and_an_overlap_refused(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        pool = d.neutron.make(
            "subnetpools",
            {"name": naming.subnetpool_name(CIDR), "prefixes": [CIDR], "default_prefixlen": 24},
        )
        net = d.neutron.make("networks", {"name": "n18c-other"})
        d.neutron.make(
            "subnets",
            {"name": "kuryr-subnet-" + CIDR, "network_id": net["id"], "ip_version": 4,
             "cidr": CIDR, "subnetpool_id": pool["id"]},
        )  # fmt: skip
        before = Counter(d.neutron.calls)
        with pytest.raises(Conflict, match="overlaps"):
            await d.ipam.request_pool(p.RequestPoolRequest.model_validate({"Pool": CIDR}))
        assert (d.neutron.calls - before)[("GET", "subnets")] == 1


async def test_a_failed_tag_write_waits_for_the_subnet_then_both_are_undone(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        gate = d.neutron.faults.hold("POST", "subnets", times=1)
        d.neutron.faults.fail("PUT", "networks", status=503)
        creating = asyncio.create_task(d.kuryr_network(CIDR))
        await eventually(lambda: d.neutron.calls[("PUT", "networks")] == 1, "the tag PUT failed")
        await asyncio.sleep(0.05)
        # The subnet's POST is under way: no undo yet, no answer to Docker.
        assert not creating.done()
        assert len(d.neutron.rows("networks")) == 1
        gate.set()
        with pytest.raises(NeutronError, match="PUT /networks"):
            await creating
        assert left(d) == []
        await eventually(lambda: intents(tmp_path) == {}, "its intents are settled")


async def test_a_refused_subnet_waits_for_the_tag_write_then_the_network_goes(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        gate = d.neutron.faults.hold("PUT", "networks", times=1)
        d.neutron.faults.fail("POST", "subnets", status=409, neutron_type="Conflict")
        creating = asyncio.create_task(d.kuryr_network(CIDR))
        await eventually(lambda: d.neutron.calls[("POST", "subnets")] == 1, "the POST refused")
        await asyncio.sleep(0.05)
        assert not creating.done()  # the tag PUT is still under way
        gate.set()
        with pytest.raises(Conflict, match="cannot create Neutron subnet"):
            await creating
        assert left(d) == []


async def test_a_subnet_made_while_the_tag_write_failed_goes_with_the_network(
    tmp_path: Path,
) -> None:
    """The other order: the subnet is made first, then the tag PUT fails."""
    async with daemon(tmp_path) as d:
        d.neutron.faults.slow(0.05, "PUT", "networks", times=1)
        d.neutron.faults.fail("PUT", "networks", status=503)
        with pytest.raises(NeutronError):
            await d.kuryr_network(CIDR)
        assert d.neutron.calls[("POST", "subnets")] == 1
        assert left(d) == []


async def test_the_router_and_the_network_are_looked_up_side_by_side(tmp_path: Path) -> None:
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    router = neutron.make("routers", {"name": ROUTER})
    async with daemon(tmp_path, neutron=neutron, router=ROUTER) as d:
        gate = d.neutron.faults.hold("GET", "routers", times=1)
        creating = asyncio.create_task(d.kuryr_network(CIDR))
        await eventually(lambda: d.neutron.calls[("GET", "networks")] == 1, "network looked up")
        # Nothing is made before the router is known.
        assert d.neutron.calls[("POST", "networks")] == 0
        gate.set()
        net = await creating
        subnet = d.neutron.get("subnets", net.subnet_id)
        assert subnet is not None and naming.router_tag(router["id"]) in subnet["tags"]


async def test_an_unknown_router_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    async with daemon(tmp_path, router="n18c-no-such-router") as d:
        with pytest.raises(NotFound, match="no Neutron router"):
            await d.kuryr_network(CIDR)
        assert d.neutron.calls[("POST", "networks")] == 0
        assert left(d) == []
