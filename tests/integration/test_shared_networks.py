"""One Neutron network, two hosts: ownership at removal, and a host gone for good.

Two private daemons stand for two hosts (the second with a ``[binding] host`` of its own,
which no chassis has: it is a host that is gone). The first makes a network, the second
adopts it with ``neutron.net.uuid``, as a second Docker host does since Docker 23 has no
cluster store. Everything runs against the shared stack's real Neutron.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kuryr import naming
from kuryr.backends.neutron import Neutron
from kuryr.ops import gc_host
from tests.conftest import StackFacts
from tests.fuzz_requests import post
from tests.integration.domain_helpers import (
    Domain,
    cleanup,
    create_request,
    docker_id,
    make_domain,
    neutron_client,
)
from tests.integration.private_daemon import KURYR, PrivateDaemon, private_daemon

pytestmark = pytest.mark.stack

NO_HEALING = "[reconcile]\ninterval = 0\n"
GATEWAY = "com.docker.network.gateway"
ADDRESS_SPACE = "no_address_space"


def call(daemon: PrivateDaemon, method: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(daemon.socket, f"/NetworkDriver.{method}", json.dumps(body).encode())
    assert status == 200 and not (answer or {}).get("Err"), f"{method}: {status} {answer}"
    return dict(answer or {})


def create_network(daemon: PrivateDaemon, did: str, cidr: str, generic: dict[str, str]) -> None:
    gateway = cidr.replace("0/24", "1/24")
    call(
        daemon,
        "CreateNetwork",
        {
            "NetworkID": did,
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": cidr, "Gateway": gateway}],
            "IPv6Data": [],
            "Options": {"com.docker.network.generic": generic},
        },
    )


def free_cidrs(count: int, taken: set[str]) -> list[str]:
    """/24s of 172.29/16 (this module's) that no Neutron subnet has."""
    free = [f"172.29.{i}.0/24" for i in range(1, 255) if f"172.29.{i}.0/24" not in taken]
    return free[:count]


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """DeleteNetwork finishes in the background once it has answered (kuryr.domain.removals)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def subnet_cidrs(neutron: Neutron, network_id: str) -> set[str]:
    return {s["cidr"] for s in await neutron.query("subnets", {"network_id": network_id})}


async def tag_claims(neutron: Neutron, network_id: str) -> list[str]:
    raw = await neutron.show("networks", network_id) or {"tags": []}
    return list(naming.tag_claims(raw["tags"]))


class Hosts:
    """The two daemons' networks on one Neutron network, removed whatever a test left."""

    def __init__(self, neutron: Neutron) -> None:
        self.neutron = neutron
        self.network_id = ""

    async def cleanup(self) -> None:
        if not self.network_id:
            return
        for port in await self.neutron.query("ports", {"network_id": self.network_id}):
            if not str(port.get("device_owner")).startswith("network:"):
                await self.neutron.delete("ports", port["id"])
        await self.neutron.delete("networks", self.network_id)


async def two_hosts(
    stack: StackFacts, hosts: Hosts, first: PrivateDaemon, second: PrivateDaemon, same: bool
) -> tuple[str, str, list[str]]:
    """The first host makes a network, the second adopts it, with the first's subnet
    (``same``) or one of its own; returns the two Docker ids and the CIDRs used."""
    neutron = hosts.neutron
    taken = {s["cidr"] for s in await neutron.query("subnets", {"fields": "cidr"})}
    cidrs = free_cidrs(2, taken)
    d1, d2 = docker_id(), docker_id()
    await asyncio.to_thread(create_network, first, d1, cidrs[0], {})
    [made] = await neutron.query("networks", {"tags": naming.id_tag_filter(d1)})
    hosts.network_id = made["id"]
    assert made["description"] == naming.creator_description(stack.chassis_hostname)
    second_cidr = cidrs[0] if same else cidrs[1]
    await asyncio.to_thread(
        create_network, second, d2, second_cidr, {"neutron.net.uuid": made["id"]}
    )
    # The second Docker network put no tag on the shared network: its anchor says it uses it.
    assert await tag_claims(neutron, made["id"]) == [d1[:32]]
    [anchor] = await neutron.query("ports", {"device_id": d2})
    assert anchor["device_owner"] == naming.ANCHOR_OWNER
    assert anchor["network_id"] == made["id"] and anchor["fixed_ips"] == []
    [used] = await neutron.query("subnets", {"network_id": made["id"], "cidr": second_cidr})
    tag = naming.TAG_SUBNET_USED if same else naming.TAG_SUBNET_MADE
    assert anchor["tags"] == [f"{tag}:{used['id']}"]
    return d1, d2, cidrs if not same else cidrs[:1]


@pytest.mark.parametrize("same", [True, False], ids=["one-subnet", "own-subnets"])
async def test_network_goes_with_the_last_host_out(stack: StackFacts, same: bool) -> None:
    hosts = Hosts(neutron_client(stack.neutron_url))
    h2 = f"owner-h2-{secrets.token_hex(3)}"
    try:
        with (
            private_daemon(extra_sections=NO_HEALING) as first,
            private_daemon(extra_sections=NO_HEALING, host=h2) as second,
        ):
            d1, d2, cidrs = await two_hosts(stack, hosts, first, second, same)
            nid = hosts.network_id
            await asyncio.to_thread(call, first, "DeleteNetwork", {"NetworkID": d1})
            await wait_for("the creator's tags to go", lambda: _no_claims(hosts.neutron, nid))
            left = await hosts.neutron.show("networks", nid)
            assert left is not None, "the first host out deleted a network the second uses"
            assert naming.TAG_MADE_NET in left["tags"]
            # The second host's subnet stays; the first's goes unless the second uses it.
            assert await subnet_cidrs(hosts.neutron, nid) == {cidrs[-1]}
            [anchor] = await hosts.neutron.query("ports", {"device_id": d2})

            await asyncio.to_thread(call, second, "DeleteNetwork", {"NetworkID": d2})
            await wait_for("the last one out", lambda: _gone(hosts.neutron, "networks", nid))
            assert await hosts.neutron.show("ports", anchor["id"]) is None
    finally:
        await hosts.cleanup()


async def test_gc_host_releases_a_host_gone_for_good(stack: StackFacts) -> None:
    hosts = Hosts(neutron_client(stack.neutron_url))
    gone = f"owner-gone-{secrets.token_hex(3)}"
    try:
        with private_daemon(extra_sections=NO_HEALING) as first:
            with private_daemon(extra_sections=NO_HEALING, host=gone) as second:
                d1, d2, cidrs = await two_hosts(stack, hosts, first, second, same=False)
                nid = hosts.network_id
                ip = cidrs[1].replace("0/24", "10")
                call(
                    second,
                    "CreateEndpoint",
                    {
                        "NetworkID": d2,
                        "EndpointID": docker_id(),
                        "Interface": {"Address": f"{ip}/24", "AddressIPv6": "", "MacAddress": ""},
                        "Options": {},
                    },
                )
            # The second host is gone (its daemon with it); its port and anchor pin the network.
            mine = await hosts.neutron.query("ports", {"binding:host_id": gone})
            owners = sorted(p["device_owner"] for p in mine)
            assert owners == sorted([naming.ANCHOR_OWNER, naming.DEVICE_OWNER]), owners
            await asyncio.to_thread(call, first, "DeleteNetwork", {"NetworkID": d1})
            await wait_for("the creator's tags to go", lambda: _no_claims(hosts.neutron, nid))
            assert await hosts.neutron.show("networks", nid) is not None

            conf = str(first.root / "kuryr.conf")
            # Every host's ports on the shared network, accounted per host.
            status = run_kuryr(conf, "status", "--hosts", "--json")
            assert status.returncode == 0, status
            per_host = json.loads(status.stdout)
            assert per_host[gone] == {nid: {"pool": 0, "in_use": 1, "anchors": 1}}
            alive = gc_host_cli(conf, stack.chassis_hostname, "--apply")
            assert alive.returncode == 1 and "alive" in alive.stderr, alive
            dry = gc_host_cli(conf, gone)
            assert dry.returncode == 0, dry
            for port in mine:
                assert port["id"] in dry.stdout
            assert f"network {nid}: network deleted" in dry.stdout, dry.stdout
            assert await hosts.neutron.show("networks", nid) is not None, "the dry run changed"
            assert len(await hosts.neutron.query("ports", {"binding:host_id": gone})) == 2

            done = gc_host_cli(conf, gone, "--apply")
            assert done.returncode == 0, done
            assert await hosts.neutron.query("ports", {"binding:host_id": gone}) == []
            assert await hosts.neutron.show("networks", nid) is None
    finally:
        await hosts.cleanup()


def gc_host_cli(config: str, host: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_kuryr(config, "gc", "--host", host, *extra)


def run_kuryr(config: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(KURYR), "--config-file", config, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


async def _no_claims(neutron: Neutron, network_id: str) -> bool:
    return await tag_claims(neutron, network_id) == []


async def _gone(neutron: Neutron, kind: str, resource_id: str) -> bool:
    return await neutron.show(kind, resource_id) is None


# --- the same rules through the domain objects, one per host, on the real Neutron -------------


@dataclass
class SharedPair:
    neutron: Neutron
    first: Domain
    second: Domain
    d1: str
    d2: str
    network_id: str
    second_subnet: str

    async def cleanup(self) -> None:
        await cleanup(self.neutron, [self.d1, self.d2])
        hosts = Hosts(self.neutron)
        hosts.network_id = self.network_id
        if await self.neutron.show("networks", self.network_id) is not None:
            await hosts.cleanup()


async def shared_by_two(stack: StackFacts, first_host: str, second_host: str) -> SharedPair:
    neutron = neutron_client(stack.neutron_url)
    taken = {s["cidr"] for s in await neutron.query("subnets", {"fields": "cidr"})}
    cidrs = free_cidrs(2, taken)
    first, second = make_domain(neutron, first_host), make_domain(neutron, second_host)
    d1, d2 = first.new_id(), second.new_id()
    made = await first.networks.create(create_request(d1, cidrs[0], "", {}, "LocalDefault"))
    generic = {"neutron.net.uuid": made.neutron_id}
    adopted = await second.networks.create(
        create_request(d2, cidrs[1], "", generic, "LocalDefault")
    )
    return SharedPair(neutron, first, second, d1, d2, made.neutron_id, adopted.subnets[0].id)


async def test_a_restarted_daemon_finds_an_anchored_network_and_leaves_it(
    stack: StackFacts,
) -> None:
    h2 = f"owner-h2-{secrets.token_hex(3)}"
    pair = await shared_by_two(stack, stack.chassis_hostname, h2)
    try:
        restarted = make_domain(pair.neutron, h2)  # no cache, no state: Neutron only
        found = await restarted.networks.get(pair.d2)
        assert found.neutron_id == pair.network_id and found.adopted
        assert [s.id for s in found.subnets] == [pair.second_subnet]

        await restarted.networks.delete(pair.d2)
        assert await pair.neutron.query("ports", {"device_id": pair.d2}) == []
        assert await pair.neutron.show("subnets", pair.second_subnet) is None
        kept = await pair.neutron.show("networks", pair.network_id)
        assert kept is not None and list(naming.tag_claims(kept["tags"])) == [pair.d1[:32]]
    finally:
        await pair.cleanup()


async def test_two_last_ones_leaving_at_once_remove_the_network(stack: StackFacts) -> None:
    """Each sees the other's claim and keeps the network; the second look afterwards (once its
    own claim is gone) finds nobody and removes it."""
    h2 = f"owner-h2-{secrets.token_hex(3)}"
    pair = await shared_by_two(stack, stack.chassis_hostname, h2)
    try:
        await asyncio.gather(
            pair.first.networks.delete(pair.d1), pair.second.networks.delete(pair.d2)
        )
        assert await pair.neutron.show("networks", pair.network_id) is None
    finally:
        await pair.cleanup()


async def test_gc_host_drops_a_gone_creators_claim(stack: StackFacts) -> None:
    """The creating host is gone for good: its claim (the network's id tags, its host in the
    description) goes with ``gc --host``; the network stays for the adopting host, which is
    then the last one out."""
    gone = f"owner-gone-{secrets.token_hex(3)}"
    pair = await shared_by_two(stack, gone, stack.chassis_hostname)
    try:
        with pytest.raises(gc_host.HostAlive):
            await gc_host.plan_host(pair.neutron, stack.chassis_hostname)
        plan = await gc_host.plan_host(pair.neutron, gone)
        [network] = plan.networks
        assert network.network_id == pair.network_id and "kept for" in network.outcome
        await gc_host.apply(pair.neutron, plan, ("kuryr", "kuryr6"))
        kept = await pair.neutron.show("networks", pair.network_id)
        assert kept is not None
        assert naming.tag_claims(kept["tags"]) == {} and naming.TAG_MADE_NET in kept["tags"]

        await pair.second.networks.delete(pair.d2)
        assert await pair.neutron.show("networks", pair.network_id) is None
    finally:
        await pair.cleanup()


def ipam(daemon: PrivateDaemon, method: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(daemon.socket, f"/IpamDriver.{method}", json.dumps(body).encode())
    assert status == 200 and not (answer or {}).get("Error"), f"{method}: {status} {answer}"
    return dict(answer or {})


def kuryr_ipam_network(
    daemon: PrivateDaemon, did: str, cidr: str, ipam_opts: dict[str, str], generic: dict[str, str]
) -> str:
    """What dockerd sends for ``docker network create -d kuryr --ipam-driver kuryr --subnet
    CIDR [--ipam-opt ...] [-o ...]``; returns the PoolID."""
    body = {"AddressSpace": ADDRESS_SPACE, "Pool": cidr, "Options": ipam_opts}
    pool = ipam(daemon, "RequestPool", body)
    network_on_pool(daemon, did, pool, generic)
    return str(pool["PoolID"])


def network_on_pool(
    daemon: PrivateDaemon, did: str, pool: dict[str, Any], generic: dict[str, str]
) -> str:
    """The rest of ``docker network create`` once RequestPool answered ``pool``: the gateway's
    address, then the network; returns the gateway."""
    gateway = ipam(
        daemon,
        "RequestAddress",
        {"PoolID": pool["PoolID"], "Address": "", "Options": {"RequestAddressType": GATEWAY}},
    )["Address"]
    call(
        daemon,
        "CreateNetwork",
        {
            "NetworkID": did,
            "IPv4Data": [{"AddressSpace": ADDRESS_SPACE, "Pool": pool["Pool"], "Gateway": gateway}],
            "IPv6Data": [],
            "Options": {"com.docker.network.generic": generic},
        },
    )
    return str(gateway).split("/")[0]


def remove_kuryr_ipam_network(daemon: PrivateDaemon, did: str, pool_id: str, gateway: str) -> None:
    """What dockerd sends for ``docker network rm``: the gateway, the pool, the network."""
    ipam(daemon, "ReleaseAddress", {"PoolID": pool_id, "Address": gateway})
    ipam(daemon, "ReleasePool", {"PoolID": pool_id})
    call(daemon, "DeleteNetwork", {"NetworkID": did})


async def test_one_kuryr_ipam_subnet_across_hosts(stack: StackFacts) -> None:
    """The README's recipe for one L2 subnet on every host: the first host makes the network
    and its subnet; the others adopt both (``-o neutron.net.name``, ``--ipam-opt
    neutron.subnet.name``), and Neutron hands out every address, so no two hosts collide."""
    hosts = Hosts(neutron_client(stack.neutron_url))
    h2 = f"owner-h2-{secrets.token_hex(3)}"
    neutron = hosts.neutron
    try:
        with (
            private_daemon(extra_sections=NO_HEALING) as first,
            private_daemon(extra_sections=NO_HEALING, host=h2) as second,
        ):
            taken = {s["cidr"] for s in await neutron.query("subnets", {"fields": "cidr"})}
            [cidr] = free_cidrs(1, taken)
            d1, d2 = docker_id(), docker_id()
            pool1 = await asyncio.to_thread(kuryr_ipam_network, first, d1, cidr, {}, {})
            [made] = await neutron.query("networks", {"tags": naming.id_tag_filter(d1)})
            hosts.network_id = made["id"]
            [subnet] = await neutron.query("subnets", {"network_id": made["id"]})
            pool2 = await asyncio.to_thread(
                kuryr_ipam_network,
                second,
                d2,
                cidr,
                {"neutron.subnet.name": subnet["name"]},
                {"neutron.net.name": made["name"]},
            )
            assert await subnet_cidrs(neutron, made["id"]) == {cidr}, "h2 made a second subnet"
            [anchor] = await neutron.query("ports", {"device_id": d2})
            assert anchor["tags"] == [f"{naming.TAG_SUBNET_USED}:{subnet['id']}"]
            addresses = [
                ipam(daemon, "RequestAddress", {"PoolID": pool, "Address": "", "Options": {}})
                for daemon, pool in ((first, pool1), (second, pool2))
            ]
            assert addresses[0]["Address"] != addresses[1]["Address"]
            gateway = str(subnet["gateway_ip"])
            ipam(first, "ReleaseAddress", {"PoolID": pool1, "Address": ip(addresses[0])})
            await asyncio.to_thread(remove_kuryr_ipam_network, first, d1, pool1, gateway)
            await wait_for("the creator's tags to go", lambda: _no_claims(neutron, made["id"]))
            # The subnet (and its subnetpool) stay for h2, which the anchor says uses it.
            assert await neutron.show("subnets", subnet["id"]) is not None
            assert await neutron.show("subnetpools", str(subnet["subnetpool_id"])) is not None

            ipam(second, "ReleaseAddress", {"PoolID": pool2, "Address": ip(addresses[1])})
            await asyncio.to_thread(remove_kuryr_ipam_network, second, d2, pool2, gateway)
            await wait_for("the last one out", lambda: _gone(neutron, "networks", made["id"]))
            pool_id = str(subnet["subnetpool_id"])
            await wait_for("its kuryrPool", lambda: _gone(neutron, "subnetpools", pool_id))
    finally:
        await hosts.cleanup()


def ip(answer: dict[str, Any]) -> str:
    return str(answer["Address"]).split("/")[0]


# --- default-pool picks of several hosts at the same moment -----------------------------------


def request_default_pool(daemon: PrivateDaemon) -> dict[str, Any]:
    """RequestPool of ``docker network create -d kuryr --ipam-driver kuryr`` without a
    ``--subnet``: the daemon picks a CIDR of its default pool."""
    body = {"AddressSpace": ADDRESS_SPACE, "Pool": "", "Options": {}}
    return ipam(daemon, "RequestPool", body)


async def drop_markers(neutron: Neutron, pool_ids: list[str]) -> None:
    """The marker subnetpools (PoolIDs) a failed test left behind."""
    for pool_id in pool_ids:
        if await neutron.show("subnetpools", pool_id) is not None:
            await neutron.delete("subnetpools", pool_id)


async def test_default_pool_picks_of_two_hosts_at_once_get_distinct_subnets(
    stack: StackFacts,
) -> None:
    """Two hosts make a network without ``--subnet`` at the same moment: both RequestPools come
    before either CreateNetwork (which makes the subnet). Each host gets a CIDR of its own, both
    networks are made, and their removal in dockerd's order leaves no marker behind."""
    neutron = neutron_client(stack.neutron_url)
    h2 = f"pick-h2-{secrets.token_hex(3)}"
    dids = [docker_id(), docker_id()]
    pool_ids: list[str] = []
    try:
        with (
            private_daemon(extra_sections=NO_HEALING) as first,
            private_daemon(extra_sections=NO_HEALING, host=h2) as second,
        ):
            daemons = (first, second)
            pools = [await asyncio.to_thread(request_default_pool, d) for d in daemons]
            pool_ids = [str(pool["PoolID"]) for pool in pools]
            assert pools[0]["Pool"] != pools[1]["Pool"], pools
            gateways = [
                await asyncio.to_thread(network_on_pool, daemon, did, pool, {})
                for daemon, did, pool in zip(daemons, dids, pools, strict=True)
            ]
            for did, pool in zip(dids, pools, strict=True):
                [network] = await neutron.query("networks", {"tags": naming.id_tag_filter(did)})
                assert await subnet_cidrs(neutron, network["id"]) == {pool["Pool"]}

            for daemon, did, pool_id, gateway in zip(
                daemons, dids, pool_ids, gateways, strict=True
            ):
                await asyncio.to_thread(remove_kuryr_ipam_network, daemon, did, pool_id, gateway)
            for did, pool_id in zip(dids, pool_ids, strict=True):
                tags = naming.id_tag_filter(did)
                await wait_for(f"network {did[:12]}", functools.partial(_no_network, neutron, tags))
                marker_gone = functools.partial(_gone, neutron, "subnetpools", pool_id)
                await wait_for(f"marker {pool_id}", marker_gone)
    finally:
        await cleanup(neutron, dids)
        await drop_markers(neutron, pool_ids)


async def test_default_pool_picks_racing_on_two_hosts_never_share_a_cidr(
    stack: StackFacts,
) -> None:
    """Several RequestPools at once on each of two hosts (those of one host queue behind each
    other, the two hosts race): every pool gets a CIDR no other has, and ReleasePool gives
    every marker back."""
    neutron = neutron_client(stack.neutron_url)
    h2 = f"pick-h2-{secrets.token_hex(3)}"
    pools: list[dict[str, Any]] = []
    try:
        with (
            private_daemon(extra_sections=NO_HEALING) as first,
            private_daemon(extra_sections=NO_HEALING, host=h2) as second,
        ):
            racers = [first, second] * 3
            pools = list(
                await asyncio.gather(*(asyncio.to_thread(request_default_pool, d) for d in racers))
            )
            cidrs = [pool["Pool"] for pool in pools]
            assert len(set(cidrs)) == len(cidrs), cidrs
            for daemon, pool in zip(racers, pools, strict=True):
                ipam(daemon, "ReleasePool", {"PoolID": pool["PoolID"]})
            for pool in pools:
                assert await neutron.show("subnetpools", pool["PoolID"]) is None
    finally:
        await drop_markers(neutron, [str(pool["PoolID"]) for pool in pools])


async def _no_network(neutron: Neutron, tags: str) -> bool:
    return await neutron.query("networks", {"tags": tags}) == []
