"""A CreateNetwork whose create Neutron did but never answered (a timeout under load, a killed
daemon) leaves nothing in Neutron: the intent recorded before the POST is settled by finding
what it made and deleting it (kuryr.domain.lost_creates). On the in-memory Neutron, whose
``lose_answers`` does the call and answers with a timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import NeutronError
from kuryr.backends.state import State
from kuryr.domain.lost_creates import Intent
from kuryr.domain.networks import OPT_NET_NAME
from kuryr.plugin import protocol as p
from tests.fakes.daemon import (
    HOST,
    Daemon,
    daemon,
    default_subnetpools,
    docker_id,
    eventually,
    intents,
)
from tests.fakes.neutron import FakeNeutron

CIDR = "10.181.0.0/24"


async def create(d: Daemon, did: str, cidr: str = CIDR, **options: str) -> None:
    """``docker network create -d kuryr --subnet cidr`` with Docker's IPAM, under id ``did``."""
    data = {"AddressSpace": "LocalDefault", "Pool": cidr, "Gateway": cidr[:-4] + "1/32"}
    request = {"NetworkID": did, "IPv4Data": [data], "IPv6Data": [], "Options": {}}
    request["Options"] = {p.OPT_GENERIC: options}
    await d.network.create_network(p.CreateNetworkRequest.model_validate(request))


def named(d: Daemon, did: str) -> list[str]:
    return [n["id"] for n in d.neutron.rows("networks", {"name": naming.network_name(did)})]


async def test_a_lost_network_create_fails_clearly_and_leaves_no_network(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        did = docker_id()
        d.neutron.faults.lose_answers("POST", "networks")
        with pytest.raises(NeutronError, match="will be deleted"):
            await create(d, did)
        await eventually(lambda: named(d, did) == [], "the network Neutron made is deleted")
        await eventually(lambda: intents(tmp_path) == {}, "its intent is settled")
        net = await d.kuryr_network()  # a normal create works afterwards
        assert d.neutron.get("networks", net.neutron_id) is not None


async def test_kuryr_ipam_network_whose_create_is_lost_is_deleted(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        d.neutron.faults.lose_answers("POST", "networks")
        with pytest.raises(NeutronError):
            await d.kuryr_network()
        await eventually(lambda: d.neutron.rows("networks") == [], "no network is left")


async def test_a_network_whose_later_step_failed_and_whose_undo_failed_goes(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        did = docker_id()
        d.neutron.faults.fail("POST", "subnets", status=503)
        d.neutron.faults.fail("DELETE", "networks", status=503)  # the undo's delete
        with pytest.raises(NeutronError):
            await create(d, did)
        await eventually(lambda: named(d, did) == [], "the settle deleted it by its id")


async def test_a_refused_create_leaves_no_intent(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        d.neutron.faults.fail("POST", "networks", status=400)
        with pytest.raises(NeutronError):
            await create(d, docker_id())
        assert intents(tmp_path) == {}


async def test_a_retry_with_the_same_id_keeps_its_own_network(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        did = docker_id()
        d.neutron.faults.lose_answers("POST", "networks")
        with pytest.raises(NeutronError):
            await create(d, did)
        await create(d, did)  # dockerd repeats it (a swarm node does)
        mine = d.neutron.rows("networks", {"tags": naming.id_tag_filter(did)})
        await eventually(lambda: len(named(d, did)) == 1, "only the lost one is deleted")
        assert named(d, did) == [mine[0]["id"]]
        assert intents(tmp_path) == {}


async def test_on_an_adopted_network_a_lost_subnet_and_anchor_go_the_network_stays(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        d.neutron.make("networks", {"name": "n18net-shared"})
        first = docker_id()
        await create(d, first, **{OPT_NET_NAME: "n18net-shared"})  # claims it with its tags
        [shared] = d.neutron.rows("networks", {"name": "n18net-shared"})
        for resource in ("subnets", "ports"):
            d.neutron.faults.lose_answers("POST", resource)
            with pytest.raises(NeutronError):
                await create(d, docker_id(), "10.182.0.0/24", **{OPT_NET_NAME: "n18net-shared"})

        def only_the_first() -> bool:
            cidrs = [s["cidr"] for s in d.neutron.rows("subnets", {"network_id": shared["id"]})]
            anchors = d.neutron.rows("ports", {"device_owner": naming.ANCHOR_OWNER})
            return cidrs == [CIDR] and [a["device_id"] for a in anchors] == [first]

        await eventually(only_the_first, "the lost subnet and anchor are deleted")
        assert d.neutron.get("networks", shared["id"]) is not None
        assert intents(tmp_path) == {}


async def test_a_retry_after_a_lost_anchor_makes_its_own(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        d.neutron.make("networks", {"name": "n18net-shared"})
        await create(d, docker_id(), **{OPT_NET_NAME: "n18net-shared"})
        did = docker_id()
        d.neutron.faults.lose_answers("POST", "ports")
        with pytest.raises(NeutronError):
            await create(d, did, "10.183.0.0/24", **{OPT_NET_NAME: "n18net-shared"})
        # Repeated at once: the lost anchor (found by the Docker id) is not taken for its own.
        await create(d, did, "10.183.0.0/24", **{OPT_NET_NAME: "n18net-shared"})
        await eventually(lambda: intents(tmp_path) == {}, "the lost create is settled")
        [anchor] = d.neutron.rows("ports", {"device_id": did})
        assert naming.anchor_subnets(anchor["tags"])[0], "the retry's anchor lists its subnet"


async def test_a_create_left_by_a_killed_daemon_is_settled_at_start(tmp_path: Path) -> None:
    neutron = FakeNeutron()
    default_subnetpools(neutron)
    async with daemon(tmp_path, neutron=neutron) as d:
        kept = await d.kuryr_network()
    # What a daemon killed between the POST and its answer leaves: the intent, and the
    # untagged network Neutron made.
    did = docker_id()
    match = {"name": naming.network_name(did), "description": naming.creator_description(HOST)}
    neutron.make("networks", match)
    state = State.open(tmp_path)
    state.intent_put("k" * 32, Intent("networks", match, did).data())
    state.close()
    async with daemon(tmp_path, neutron=neutron) as d:
        await eventually(lambda: named(d, did) == [], "the start deleted it")
        assert d.neutron.get("networks", kept.neutron_id) is not None
    assert intents(tmp_path) == {}
