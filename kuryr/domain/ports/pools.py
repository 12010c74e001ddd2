"""Per-(subnet, host) pools of Neutron ports created ahead, so a container start creates none.

Pool ports are created in bulk (one POST per batch), marked as this host's (ports.mine) with
``device_owner=compute:kuryr`` and an EMPTY ``device_id``; their membership shows in their
name :data:`naming.POOL_PORT_NAME` (in the POST body: recognisable even when the create
outlived its caller) and the tag :data:`naming.POOL_TAG` (in the POST body where Neutron keeps
it, kuryr.domain.ports.post_tags; else set by the journal). Taking a port is a synchronous step
on the event loop (memory and state change together, no await in between), so no port is
handed out twice however many starts run at once. Refill runs in the background, in batches of
at least ``batch``, never beyond ``max`` free-or-being-created ports. A pool starts filling
when its network is created, so the first containers find ports; how many it aims at follows
demand (kuryr.domain.ports.sizing, kuryr.domain.ports.shrink); its refill is
kuryr.domain.ports.refill, its reload at start kuryr.domain.ports.recovery.

Two modes per subnet. ``any`` (Kuryr IPAM): any free port serves, Neutron picked its address.
``exact`` (Docker's own IPAM): Docker hands out the LOWEST free address (libnetwork's allocator,
serial=false), so the pool keeps ports on the lowest addresses no container holds.

A released port comes back cleaned of its container's bookkeeping (journaled), or is deleted in
the background when the pool is full. The free ports the next starts take (the oldest; in exact
mode the lowest addresses) are plugged ahead, ``batch`` at first, one more each time a start
takes a port that was not (up to ``max``); a port back from its container keeps its VIF when
still whole, and is the first a start in ``any`` mode takes (last back, first out: its join
reads no status, as Neutron has it ACTIVE, and a steady state cycles a few ports while the
rest rest); a free port leaving the pool for deletion is unplugged (:class:`Wiring`,
kuryr.domain.ports.prewire). So a start finds its VIF wired, while a new network does not plug
its whole pool at once: each first plug costs Neutron one port status change (~1-3 s of its one
OVN event thread under load), and a port goes ACTIVE only after those queued before it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from kuryr import deadline, metrics, naming
from kuryr.backends.model import Network, Subnet
from kuryr.backends.neutron_api import NeutronApi, Resource
from kuryr.backends.state import (
    FREE,
    MODE_ANY,
    MODE_EXACT,
    TAKEN,
    PoolPort,
    PoolRow,
    State,
)
from kuryr.config import PoolConfig
from kuryr.domain.ports import desired, recovery, sizing
from kuryr.domain.ports.journal import Journal
from kuryr.domain.ports.ledger import PortPool
from kuryr.domain.ports.mine import Mine
from kuryr.domain.ports.port import Port
from kuryr.domain.ports.refill import BULK_TIMEOUT, Refill
from kuryr.domain.ports.shrink import Shrink
from kuryr.domain.ports.wiring import Wiring
from kuryr.domain.quiet import Quiet
from kuryr.errors import BackendError, NotFound
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

# Deleting a network's pool ports in the background once Docker's request is over: each costs
# Neutron ~0.3-1 s (side by side: the journal's delete lane).
_FLUSH_TIMEOUT = 120.0
# IPAMData address spaces of Docker's own IPAM driver (Kuryr IPAM answers "no_address_space").
DOCKER_ADDRESS_SPACES = ("", "LocalDefault", "GlobalDefault")


class Pools:
    def __init__(
        self,
        state: State,
        neutron: NeutronApi,
        journal: Journal,
        mine: Mine,
        config: PoolConfig,
        wiring: Wiring,
        quiet: Quiet,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._neutron = neutron
        self._journal = journal
        self._mine = mine
        self.config = config
        self._wiring = wiring
        self._pools: dict[str, PortPool] = {}
        self._refill = Refill(state, neutron, journal, mine, config, quiet, self, wiring.takes)
        self._clock = clock
        self.shrink = Shrink(self, config, clock)

    @property
    def enabled(self) -> bool:
        return self.config.max > 0

    # --- registration -----------------------------------------------------------------------

    def ensure(
        self,
        subnet: Subnet,
        mode: str,
        ranges: list[tuple[str, str]] | None = None,
        start: bool = True,
    ) -> PortPool:
        """The subnet's pool, made on first sight; its refill starts once ``start`` says the
        subnet is used (a network no container ever joins costs Neutron no ports)."""
        pool = self._pools.get(subnet.id)
        if (
            pool is None
            or pool.row.mode != mode
            or (ranges is not None and pool.row.ranges != ranges)
        ):
            row = PoolRow(
                subnet.id,
                subnet.network_id,
                mode,
                ranges if ranges is not None else (pool.row.ranges if pool else []),
            )
            self._state.save_pool(row)
            if pool is None:
                pool = self._new_pool(row)
                self._pools[subnet.id] = pool
            else:
                pool.row = row
        if start:
            pool.started = True
            self._refill.kick(pool)
        return pool

    def _new_pool(self, row: PoolRow) -> PortPool:
        demand = sizing.Demand(self.config.window, self._clock())
        wire = max(self.config.batch, 1)
        return PortPool(row, demand, target=sizing.initial(self.config), wire_target=wire)

    def pool(self, subnet_id: str) -> PortPool | None:
        return self._pools.get(subnet_id)

    def all(self) -> list[PortPool]:
        return list(self._pools.values())

    # --- taking and giving back (synchronous: atomic on the event loop) ------------------------

    def take_exact(self, subnet_id: str, ip: str) -> Port | None:
        pool = self._pools.get(subnet_id)
        if pool is None:
            return None
        port_id = next((pid for pid, pp in pool.free.items() if pp.ip == ip), None)
        return None if port_id is None else self.take(pool, port_id)

    async def take_exact_or_wait(self, subnet_id: str, ip: str) -> Port | None:
        """The pool port holding ``ip``; when a bulk create in flight is making it, the port
        once that create is over (Neutron holds the address from the start of the create, so
        a port made for it meanwhile would be refused); on a miss, the port the pool's next
        bulk create makes on ``ip`` with the other misses meanwhile. None when the pool
        cannot make it: the caller creates the port itself."""
        pool = self._pools.get(subnet_id)
        if pool is None:
            return None
        await self._refill.made(pool, ip)
        return self.take_exact(subnet_id, ip) or await self._refill.wait_exact(pool, ip)

    def forget(self, port: Port) -> None:
        """A pool port deleted outside the pools (its address moved to another port): no pool
        tracks it any more, and its VIF plugged ahead goes."""
        for subnet_id in port.subnet_ids:
            self._untrack(self._pools.get(subnet_id), port.id)
        self._wiring.gone(port.id, port.network_id)

    async def take_or_wait(self, subnet_id: str) -> Port | None:
        """A free port of the subnet's pool; on a miss, one from the pool's next bulk create
        (shared with every other start waiting meanwhile). None when the subnet has no pool
        that could make one: the caller creates the port itself."""
        pool = self._pools.get(subnet_id)
        if pool is None or pool.closing or not self.enabled:
            return None
        if pool.free:
            return self.take(pool, pool.next_free())
        return await self._refill.wait(pool)

    def take(self, pool: PortPool, port_id: str) -> Port:
        """The free port ``port_id`` leaves the pool for a container."""
        if port_id not in pool.wired:
            pool.wire_target = min(max(self.config.max, 1), pool.wire_target + 1)
        pool.wired.discard(port_id)
        pp = pool.free.pop(port_id)
        pp.status = TAKEN
        pool.taken[port_id] = pp
        self._state.set_pool_port_status(port_id, TAKEN)
        out = pool.demand.took(self._clock(), port_id)
        pool.target = sizing.grown(pool.target, out, self.config)
        self._level(pool)
        self._wire(pool)
        if self._refill.urgent(pool):
            pool.nudge.set()
        self._refill.kick(pool)
        return Port.from_neutron(pp.port)

    def give_back(self, port: Port, reusable: bool = True) -> None:
        """Put a released port back in its subnet's pool (cleaning journaled); one that does
        not belong in a pool is deleted: not ``reusable`` (it must serve no other container),
        no pool for its subnet, dual stack, or the pool full."""
        pool = self._pools.get(port.fixed_ips[0][0]) if len(port.fixed_ips) == 1 else None
        port_id = port.id
        if not reusable or pool is None or pool.closing:
            self.delete(pool, port_id)
            return
        subnet_id, ip = port.fixed_ips[0]
        pool.demand.returned(port_id)  # its start no longer counts as demand
        if len(pool.free) + pool.creating >= self.config.max:
            evicted = self._evicted_for(pool, ip)
            if evicted is None:
                self.delete(pool, port_id)
                return
            self.delete(pool, evicted)
        pool.taken.pop(port_id, None)
        clean = desired.pooled(port)
        pp = PoolPort(clean.id, clean.to_neutron(), subnet_id, ip, FREE)
        with self._state.transaction():
            self._journal.record(port, desired.cleaned(port, [naming.POOL_TAG]))
            self._state.save_pool_port(pp)
        pool.free[port_id] = pp
        # Its VIF is kept when still whole: no plug, no status change for Neutron.
        pool.wired.add(port_id)
        self._ahead(clean)
        self._level(pool)
        self._refill.serve_waiters(pool)

    def _evicted_for(self, pool: PortPool, ip: str) -> str | None:
        """Exact mode keeps the lowest addresses: a full pool gives up its highest free port
        for a lower one coming back. Returns that free port's id, or None to delete the
        newcomer."""
        if pool.row.mode != MODE_EXACT or not pool.free:
            return None
        highest = max(pool.free.values(), key=lambda pp: _addr(pp.ip))
        if _addr(highest.ip) <= _addr(ip):
            return None
        return highest.port_id

    def delete(self, pool: PortPool | None, port_id: str) -> None:
        """The port leaves the pools for good: deleted in the background (journaled), and its
        VIF plugged ahead goes."""
        with self._state.transaction():
            self._untrack(pool, port_id)
            self._journal.record_delete(port_id)
        self._wiring.gone(port_id, pool.row.network_id if pool is not None else "")
        if pool is not None:
            self._level(pool)

    def _untrack(self, pool: PortPool | None, port_id: str) -> None:
        if pool is not None:
            pool.taken.pop(port_id, None)
            pool.free.pop(port_id, None)
        self._state.forget_pool_port(port_id)

    def _level(self, pool: PortPool) -> None:
        metrics.set_pool_level(pool.subnet_id, len(pool.free))

    def _ahead(self, port: Port) -> None:
        self._wiring.ahead(port)

    async def _whole(self, port: Resource) -> bool:
        return await self._wiring.whole(Port.from_neutron(port))

    def _wire(self, pool: PortPool) -> None:
        """Keep ``wire_target`` free ports plugged ahead: those the next starts take first."""
        pool.wired &= pool.free.keys()
        short = pool.wire_target - len(pool.wired)
        if short <= 0:
            return
        unwired = [pp for pid, pp in pool.free.items() if pid not in pool.wired]
        if pool.row.mode == MODE_EXACT:
            unwired.sort(key=lambda pp: _addr(pp.ip))
        for pp in unwired[:short]:
            pool.wired.add(pp.port_id)
            self._ahead(Port.from_neutron(pp.port))

    def _close(self, pool: PortPool) -> None:
        pool.closing = True
        pool.nudge.set()

    async def fill(self, pool: PortPool, count: int) -> int:
        """Create up to ``count`` ports now (never beyond ``max``); returns how many were made."""
        return await self._refill.fill(pool, count)

    # --- the ledger the refill writes to ---------------------------------------------------------

    def add_created(self, pool: PortPool, port: Port) -> None:
        """A port a refill made (or a stray it found) joins the pool as free."""
        ip = port.ip_on(pool.subnet_id) or ""
        pooled = port.replace(tags=(naming.POOL_TAG,))
        pp = PoolPort(port.id, pooled.to_neutron(), pool.subnet_id, ip, FREE)
        owed = desired.cleaned(port, [naming.POOL_TAG])
        with self._state.transaction():
            if desired.holds(port, owed):
                # Tagged by its create (kuryr.domain.ports.post_tags): nothing to write.
                self._state.save_view(port.id, desired.view_of(port))
            else:
                self._journal.record(port, owed)
            self._state.save_pool_port(pp)
        pool.free[pp.port_id] = pp
        self._wire(pool)
        self._level(pool)

    # --- networks -------------------------------------------------------------------------------

    async def network_created(self, network: Network, req: p.CreateNetworkRequest) -> None:
        """Start filling the pools of a new network's subnets (in the background), so its
        first containers find ports.

        The mode follows the IPAM driver: Docker's own (its address spaces) keeps ports on the
        addresses Docker picks next, which needs the subnet's allocation pools (read once here,
        off the start path)."""
        if not self.enabled:
            return
        docker_ipam = {
            ipaddress.ip_network(d.pool, strict=False)
            for d in [*req.ipv4_data, *req.ipv6_data]
            if d.address_space in DOCKER_ADDRESS_SPACES
        }
        for subnet in network.subnets:
            if subnet.cidr in docker_ipam:
                self.ensure(subnet, MODE_EXACT, await self._ranges(subnet))
            else:
                self.ensure(subnet, MODE_ANY)

    async def _ranges(self, subnet: Subnet) -> list[tuple[str, str]]:
        raw = await self._neutron.show("subnets", subnet.id)
        pools = (raw or {}).get("allocation_pools") or []
        return [(str(a["start"]), str(a["end"])) for a in pools]

    # --- drain, network removal ------------------------------------------------------------------

    async def drain(self, subnet_id: str, keep: int = 0) -> int:
        """Delete free ports down to ``keep`` (in the background, journaled); returns how many."""
        pool = self._pools.get(subnet_id)
        if pool is None:
            raise NotFound(f"no pool for subnet {subnet_id}")
        victims = list(pool.free)[keep:] if keep else list(pool.free)
        for port_id in victims:
            self.delete(pool, port_id)
        return len(victims)

    async def remove_network(self, network: Network) -> None:
        """Before a network is deleted: stop its refills, delete its pool ports and finish the
        journaled bookkeeping of every port on it (a port still carrying a released
        container's device_id would block the delete)."""
        doomed: list[str] = []
        for subnet in network.subnets:
            pool = self._pools.get(subnet.id)
            if pool is None:
                continue
            self._close(pool)
            if pool.refill is not None:
                await asyncio.gather(pool.refill, return_exceptions=True)
            self._refill.fail_waiters(
                pool, BackendError(f"network {network.docker_id[:12]} is removed")
            )
            ports = [*pool.free, *pool.taken]
            doomed += ports
            for port_id in ports:
                self.delete(pool, port_id)
        on_network = await self._neutron.query(
            "ports", {"network_id": network.neutron_id, "fields": "id"}
        )
        left = deadline.remaining()
        await self._journal.flush(
            {*doomed, *(str(pt["id"]) for pt in on_network)},
            timeout=_FLUSH_TIMEOUT if left is None else left,
        )
        # Their VIFs too (a macvlan's pair on the VM's port): none outlives the network.
        await self._wiring.unplugged(network.neutron_id)
        for subnet in network.subnets:
            if self._pools.pop(subnet.id, None) is not None:
                self._state.forget_pool(subnet.id)
                metrics.forget_pool(subnet.id)
        if doomed:
            LOG.info("network %s: %d pool port(s) deleted", network.docker_id[:12], len(doomed))

    def start(self) -> None:
        """Shrink idle pools from now on."""
        self.shrink.start()

    async def close(self) -> None:
        """Stop refilling (shutdown); created ports stay pooled for the next start."""
        await self.shrink.stop()
        refills = [p.refill for p in self._pools.values() if p.refill is not None]
        for pool in self._pools.values():
            self._close(pool)
        if refills:
            await asyncio.gather(*refills, return_exceptions=True)

    # --- reload after a restart ------------------------------------------------------------------

    async def load(self) -> None:
        """Rebuild the pools from the local state, checked against Neutron when it answers. Only
        subnets of networks this daemon knows count: pool ports of other daemons on the same
        host (a second state directory) are never taken over."""
        known = {s.id for n in self._state.networks() for s in n.subnets}
        for row in self._state.pools():
            if row.subnet_id in known:
                self._pools[row.subnet_id] = self._new_pool(row)
            else:
                self._state.forget_pool(row.subnet_id)
        local = {pp.port_id: pp for pp in self._state.pool_ports()}
        try:
            remote = await recovery.pool_ports_in_neutron(self._neutron, self._mine)
        except BackendError as exc:
            LOG.warning("pools reloaded from local state only (Neutron: %s)", exc)
            remote = None
        if remote is not None:
            known_subnets, takes = set(self._pools), self._wiring.takes
            recovery.merge_remote(self._state, self._journal, known_subnets, local, remote, takes)
        for pp in local.values():
            pool = self._pools.get(pp.subnet_id)
            if pool is None:
                continue
            (pool.free if pp.status == FREE else pool.taken)[pp.port_id] = pp
            if pp.status == FREE and await self._whole(pp.port):
                # Kept as it is from before the restart: no plug, no status change.
                pool.wired.add(pp.port_id)
                self._ahead(Port.from_neutron(pp.port))
        for pool in self._pools.values():
            # The others only up to the pool's budget, as for a new pool.
            self._wire(pool)
            # A predecessor killed during a bulk create: NeutronApi may still be making its ports.
            pool.strays_until = time.monotonic() + BULK_TIMEOUT
            pool.started = True
            self._level(pool)
            self._refill.kick(pool)
        LOG.info(
            "pools reloaded: %s",
            ", ".join(f"{p.subnet_id[:8]} {len(p.free)} free" for p in self._pools.values())
            or "none",
        )

    def show(self) -> list[dict[str, Any]]:
        return [p.summary() for p in self._pools.values()]


def _addr(ip: str) -> int:
    return int(ipaddress.ip_address(ip))
