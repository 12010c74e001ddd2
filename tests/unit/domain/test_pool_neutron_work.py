"""What pools cost Neutron, on the in-memory Neutron: pool ports carry their tag from their bulk
POST where Neutron keeps it (ML2's tag_ports_during_bulk_creation, learnt from its first
answer) and get it by PUT where it does not; a network removal deletes its pool ports side by
side and leaves nothing in Neutron."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kuryr import naming
from kuryr.backends.neutron_api import NeutronError
from kuryr.config import PoolConfig
from kuryr.domain.ports.journal import DELETE_WORKERS
from tests.fakes.daemon import Daemon, Net, daemon, default_subnetpools, eventually
from tests.fakes.neutron import FakeNeutron

POOL = PoolConfig(min=2, max=40, batch=4, initial=4)


def neutron(post_tags: bool) -> FakeNeutron:
    fake = FakeNeutron(post_tags=post_tags)
    default_subnetpools(fake)
    return fake


def tag_puts(fake: FakeNeutron) -> list[str]:
    """The ports whose tags get a ``PUT /ports/{id}/tags`` from now on."""
    seen: list[str] = []
    real = fake.set_tags

    async def set_tags(resource: str, resource_id: str, tags: list[str]) -> list[str]:
        if resource == "ports":
            seen.append(resource_id)
        return await real(resource, resource_id, tags)

    fake.set_tags = set_tags  # type: ignore[method-assign,assignment]
    return seen


async def pooled(d: Daemon, net: Net, count: int) -> set[str]:
    """The network's pool once ``count`` ports are in it, all tagged."""

    def tagged() -> bool:
        ports = d.ports(net)
        return len(ports) == count and all(naming.POOL_TAG in pt["tags"] for pt in ports)

    await eventually(tagged, f"{count} pool ports, tagged")
    return {str(pt["id"]) for pt in d.ports(net)}


@pytest.mark.parametrize("post_tags", [True, False], ids=["extension on", "extension off"])
async def test_the_fake_keeps_tags_posted_with_a_port_only_with_the_extension(
    post_tags: bool,
) -> None:
    fake = neutron(post_tags)
    net = await fake.create("networks", {"name": "n"})
    await fake.create("subnets", {"network_id": net["id"], "ip_version": 4, "cidr": "10.9.0.0/24"})

    [port] = await fake.create_bulk("ports", [{"network_id": net["id"], "tags": ["a", "b"]}])

    assert port["tags"] == (["a", "b"] if post_tags else [])
    with pytest.raises(NeutronError) as refused:
        await fake.create("networks", {"name": "m", "tags": ["a"]})
    assert refused.value.http_status == 400, "only a port POST takes tags"


async def test_with_the_extension_pool_ports_are_tagged_by_their_bulk_post(tmp_path: Path) -> None:
    fake = neutron(post_tags=True)
    puts = tag_puts(fake)
    async with daemon(tmp_path, POOL, fake) as d:
        first = await d.kuryr_network()
        await pooled(d, first, POOL.initial)
        second = await d.kuryr_network()
        await pooled(d, second, POOL.initial)
        await asyncio.sleep(0.05)  # bookkeeping owed, if any, has had its turn

        assert puts == [], "no pool port needed a tag PUT"


async def test_without_the_extension_pool_ports_get_their_tag_by_put(tmp_path: Path) -> None:
    fake = neutron(post_tags=False)
    puts = tag_puts(fake)
    async with daemon(tmp_path, POOL, fake) as d:
        first = await d.kuryr_network()
        made = await pooled(d, first, POOL.initial)
        # Learnt from the first answer: the second pool posts no tag, and is tagged by PUT.
        second = await d.kuryr_network()
        made |= await pooled(d, second, POOL.initial)

        assert sorted(puts) == sorted(made), "one tag PUT per pool port"


async def test_a_network_removal_deletes_its_pool_ports_side_by_side_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    size = DELETE_WORKERS + 4
    full = PoolConfig(min=size, max=size, batch=size, initial=size)
    async with daemon(tmp_path, full) as d:
        net = await d.kuryr_network()
        await pooled(d, net, size)
        in_flight = most = 0
        real = d.neutron.delete

        async def delete(resource: str, resource_id: str, revision: int | None = None) -> bool:
            nonlocal in_flight, most
            if resource != "ports":
                return await real(resource, resource_id, revision)
            in_flight += 1
            most = max(most, in_flight)
            try:
                await asyncio.sleep(0.02)  # ~0.3-1 s each in a loaded Neutron
                return await real(resource, resource_id, revision)
            finally:
                in_flight -= 1

        d.neutron.delete = delete  # type: ignore[method-assign]

        await d.remove_network(net)

        assert most == DELETE_WORKERS, f"{most} pool port deletes at once"
        assert d.neutron.rows("ports", {"network_id": net.neutron_id}) == []
        assert d.neutron.get("networks", net.neutron_id) is None
        assert d.pools.pool(net.subnet_id) is None
