"""A PoolID kuryr-libnetwork serves for a network whose subnet comes from a shared pool.

kuryr-libnetwork 18 takes a PoolID only as a subnetpool uuid. It finds the pool's subnet by
``subnetpool_id`` or, when the pool has none, by the pool's first prefix as CIDR and the
pool's id as a subnet tag. A subnet from a pool many networks share (Kuryr's default pools,
a named pool of several prefixes) is found neither way by that pool's id.

So such a network's pool gets a marker: a subnetpool ``kuryrPool-<cidr>`` whose one prefix is
the CIDR and that holds no subnet. Its id is the PoolID and tags the subnet. The subnet still
comes from the shared pool, so Neutron keeps every network of that pool apart. The marker's
description names the shared pool, which is how it is told from an ``--ip-range`` pool of the
same shape (a restart between RequestPool and CreateNetwork finds it by name). ReleasePool
deletes it, under either daemon; reconciliation deletes one no subnet carries as a tag.
"""

from __future__ import annotations

from kuryr import naming
from kuryr.backends.model import IPNetwork
from kuryr.backends.neutron_api import NeutronApi, Resource

DESCRIPTION_PREFIX = "kuryr: marks a pool of subnetpool "


async def create(neutron: NeutronApi, shared_pool_id: str, cidr: IPNetwork, shared: bool) -> str:
    """The marker of ``cidr`` in the shared pool; returns its id (the PoolID)."""
    marker = await neutron.create(
        "subnetpools",
        {
            "name": naming.subnetpool_name(str(cidr)),
            "prefixes": [str(cidr)],
            "default_prefixlen": cidr.prefixlen,
            "shared": shared,
            "description": DESCRIPTION_PREFIX + shared_pool_id,
        },
    )
    return str(marker["id"])


def shared_pool_of(subnetpool: Resource) -> str | None:
    """The shared pool a marker stands for; None for any other subnetpool."""
    description = str(subnetpool.get("description") or "")
    if not description.startswith(DESCRIPTION_PREFIX):
        return None
    return description[len(DESCRIPTION_PREFIX) :] or None
