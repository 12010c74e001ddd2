"""When a ``kuryrPool-*`` subnetpool Kuryr made may go: once no subnet uses it.

Such a pool serves one Docker IPAM pool (an ``--ip-range``, a CIDR outside Kuryr's pools, the
marker of a CIDR picked from a shared pool). Whoever removes the last subnet it served (a
ReleasePool, a DeleteNetwork that finishes late, ``kuryr gc --host`` for a host gone for good)
asks here. Default pools, pools adopted by option and pools of other names are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi, NeutronError, Resource

LOG = logging.getLogger(__name__)


def deletable(pool: Resource, default_names: Collection[str]) -> bool:
    return (
        str(pool.get("name", "")).startswith(naming.SUBNETPOOL_NAME_PREFIX)
        and pool.get("name") not in default_names
        and naming.TAG_EXISTING_SUBNETPOOL not in pool.get("tags", [])
    )


async def cleanup(neutron: NeutronApi, subnetpool_id: str, default_names: Collection[str]) -> None:
    """Delete the subnetpool if Kuryr made it and no subnet uses it."""
    pool = await neutron.show("subnetpools", subnetpool_id)
    if pool is None or not deletable(pool, default_names):
        return
    if await neutron.query("subnets", {"subnetpool_id": subnetpool_id, "fields": "id"}):
        return
    # A subnet outside the pool that the pool serves (an adopted one, a slice, the subnet
    # of a marker) carries its id as a tag: a ReleasePool naming another CIDR keeps it.
    if await neutron.query("subnets", {"tags": subnetpool_id, "fields": "id"}):
        return
    try:
        await neutron.delete("subnetpools", subnetpool_id)
    except NeutronError as exc:
        if not exc.conflict:
            raise
        LOG.info("subnetpool %s still in use, kept", subnetpool_id)
