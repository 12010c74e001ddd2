"""Recovery of the port pools at start: the local state's pool ports checked against this host's
pool ports in Neutron (kuryr.domain.ports.pools.Pools.load)."""

from __future__ import annotations

from collections.abc import Callable

from kuryr import naming
from kuryr.backends.neutron_api import NeutronApi
from kuryr.backends.state import FREE, TAKEN, PoolPort, State
from kuryr.domain.ports import desired
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.mine import Mine
from kuryr.domain.ports.port import Port


async def pool_ports_in_neutron(neutron: NeutronApi, mine: Mine) -> list[Port]:
    """This host's pool ports: tagged, or only named (their create outlived its caller,
    or the daemon died before the journal wrote the tag)."""
    mark = await mine.mark()
    tagged = await neutron.query("ports", {**mark.query(), "tags": naming.POOL_TAG})
    named = await neutron.query("ports", {**mark.query(), "name": naming.POOL_PORT_NAME})
    ports = [p for p in map(Port.from_neutron, [*tagged, *named]) if mark.owns(p)]
    return list({port.id: port for port in ports}.values())


def merge_remote(
    state: State,
    journal: Journal,
    subnets: set[str],
    local: dict[str, PoolPort],
    remote: list[Port],
    takes: Callable[[Port], bool],
) -> None:
    """Neutron decides which ports exist; the local state decides which are free."""
    in_use = {Port.from_neutron(raw).id for _, raw in state.endpoints().values()}
    seen = {port.id for port in remote}
    for port_id in [pid for pid in local if pid not in seen]:
        if journal.state.journal_entry(port_id) is None:
            del local[port_id]
            state.forget_pool_port(port_id)
    for port in remote:
        port_id = port.id
        if port_id in local or len(port.fixed_ips) != 1 or not takes(port):
            continue
        subnet_id, ip = port.fixed_ips[0]
        if subnet_id not in subnets:
            continue
        free = not port.device_id and port_id not in in_use
        kept = port
        if free and naming.POOL_TAG not in port.tags:
            clean = desired.cleaned(port, [naming.POOL_TAG])
            kept = port.replace(tags=tuple(clean["tags"]))
        pp = PoolPort(kept.id, kept.to_neutron(), subnet_id, ip, FREE if free else TAKEN)
        with state.transaction():
            if kept is not port:
                journal.record(port, clean)
            state.save_pool_port(pp)
        local[port_id] = pp
