"""A free CIDR of a shared subnetpool, claimed so that no other host takes it too.

RequestPool without a ``--subnet`` picks a CIDR of a shared pool (the default ``kuryr`` /
``kuryr6``, a named pool of several prefixes), but the subnet that Neutron keeps apart from
the pool's others is only made by CreateNetwork, a request later. Daemons on several hosts
picking at the same moment used to see the same CIDR free, and the second CreateNetwork then
failed in Neutron. The pick cannot be left to Neutron (allocation by prefix length): Docker
needs the CIDR before the network exists.

So a pick is a claim in Neutron: the pool's marker (kuryr.domain.pool_markers) is made
first, then Neutron is asked whether any other marker or subnet holds the CIDR. A host that
finds one withdraws its marker and picks again. Of two claims, the one made later always sees
the earlier one (each looks only after its own marker exists), so two hosts never both keep
a CIDR; both may withdraw, and the random pause before their next pick sets them apart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random

from kuryr import deadline
from kuryr.backends.model import IPNetwork
from kuryr.backends.neutron_api import NeutronApi, Resource
from kuryr.domain import cidrs, pool_markers
from kuryr.errors import Conflict

LOG = logging.getLogger(__name__)

ATTEMPTS = 6
# Longest random pause (seconds) after a withdrawn claim, before the next pick.
MAX_PAUSE = 0.3


async def claim(neutron: NeutronApi, subnetpool: Resource, shared: bool) -> tuple[IPNetwork, str]:
    """A free CIDR of ``subnetpool`` at its default prefix length, and the id of its marker
    (the PoolID); this host holds it alone."""
    withdrawn: list[IPNetwork] = []
    for _ in range(ATTEMPTS):
        cidr = await _pick(neutron, subnetpool, withdrawn)
        marker = await pool_markers.create(neutron, subnetpool["id"], cidr, shared)
        try:
            contested = await _held_by_others(neutron, subnetpool["id"], cidr, marker)
        except BaseException:
            with deadline.cleanup():
                await neutron.delete("subnetpools", marker)
            raise
        if not contested:
            return cidr, marker
        LOG.info(
            "%s of subnetpool %s claimed elsewhere at once; picking again", cidr, subnetpool["name"]
        )
        await neutron.delete("subnetpools", marker)
        withdrawn.append(cidr)
        await asyncio.sleep(random.uniform(0, MAX_PAUSE))
    tried = ", ".join(map(str, withdrawn))
    raise Conflict(
        f"no CIDR of subnetpool {subnetpool['name']} could be claimed: another host "
        f"claimed each of {tried} at the same moment"
    )


async def _pick(neutron: NeutronApi, subnetpool: Resource, withdrawn: list[IPNetwork]) -> IPNetwork:
    """The first CIDR at the pool's default prefix length that no subnet of the pool, no
    marker (every host's pending or served pick, this one's included) and no CIDR this
    request withdrew overlaps."""
    taken = [*await _subnets_of(neutron, subnetpool["id"]), *withdrawn]
    taken += [cidr for _, cidr in await _markers_of(neutron, subnetpool["id"])]
    prefixlen = int(subnetpool["default_prefixlen"])
    for prefix in subnetpool.get("prefixes", []):
        block = ipaddress.ip_network(prefix)
        if block.prefixlen > prefixlen:
            continue
        free = cidrs.first_free(block.subnets(new_prefix=prefixlen), taken)
        if free is not None:
            return free
    raise Conflict(f"subnetpool {subnetpool['name']} has no free /{prefixlen} left")


async def _held_by_others(
    neutron: NeutronApi, subnetpool_id: str, cidr: IPNetwork, marker: str
) -> bool:
    markers = await _markers_of(neutron, subnetpool_id)
    if any(cidr.overlaps(held) for ident, held in markers if ident != marker):
        return True
    return any(cidr.overlaps(held) for held in await _subnets_of(neutron, subnetpool_id))


async def _subnets_of(neutron: NeutronApi, subnetpool_id: str) -> list[IPNetwork]:
    used = await neutron.query("subnets", {"subnetpool_id": subnetpool_id, "fields": "cidr"})
    return [ipaddress.ip_network(s["cidr"]) for s in used]


async def _markers_of(neutron: NeutronApi, subnetpool_id: str) -> list[tuple[str, IPNetwork]]:
    """(id, CIDR) of every marker standing for a pool of ``subnetpool_id``."""
    pools = await neutron.query("subnetpools", {"fields": ["id", "prefixes", "description"]})
    return [
        (str(pool["id"]), ipaddress.ip_network(prefix))
        for pool in pools
        if pool_markers.shared_pool_of(pool) == subnetpool_id
        for prefix in pool.get("prefixes") or []
    ]
