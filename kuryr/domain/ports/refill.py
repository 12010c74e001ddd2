"""Refill of the port pools: the one background task per pool that makes its ports.

A pool starts filling when its network is created, so the first containers find ports. Its
refill aims at ``target`` free ports, which follows demand (kuryr.domain.ports.sizing: a new
pool aims at ``initial``). A start that finds the pool empty (a
burst) waits for the pool's one refill instead of making its own port: the next bulk POST is
sized to the starts waiting (they are served before the pool is topped up), so misses arriving
together share one POST. Neutron makes the ports of a bulk one after the other (~0.5 s each
under load), so a POST holds at most ``batch`` ports beyond the waiting starts: a small batch
makes ports arrive early and keeps a later miss from queueing behind a long refill. Each miss
raises the target by one (up to ``max``): the next burst of that size finds its ports ready.
A refill that can wait (no start waits, at least ``batch`` ports free, or a pool no start has
taken from yet) waits for a pause in Docker's requests first (kuryr.domain.quiet). So a new
network's first fill runs once Docker pauses, not beside the requests that follow its
``docker network create`` (the next network's create, whose Neutron calls would queue behind
the bulk POST), and a network removed at once costs no ports; a start that misses meanwhile
makes it urgent.

Exact mode (Docker's own IPAM) makes ports on the lowest addresses no container holds. A start
that misses there asked for the address Docker chose: it waits for the next bulk POST, which
makes the addresses of the starts waiting first, so a burst's misses share POSTs as they do
with Kuryr's IPAM instead of each making its own port. Neutron refuses a bulk whole when one
address is held; the round then makes its ports one by one, and a start whose address was
refused makes its own port (which finds out who holds the address). What the refill makes goes
into the pool through :class:`Ledger` (kuryr.domain.ports.pools).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from kuryr import deadline, naming, request_ids
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import MODE_EXACT, State, iter_hosts
from kuryr.config import PoolConfig
from kuryr.domain.ports import desired, sizing
from kuryr.domain.ports.journal import Journal, background
from kuryr.domain.ports.ledger import PortPool
from kuryr.domain.ports.mine import Mine
from kuryr.domain.ports.port import Port
from kuryr.domain.ports.post_tags import PostTags
from kuryr.domain.quiet import Quiet
from kuryr.errors import BackendError, KuryrError

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# Misses arriving this close together share one bulk POST.
_COALESCE_SECONDS = 0.005
# A bulk create runs in the background (no Docker request waits on it) and costs Neutron one
# bound port create per item: under load it needs far longer than a request-path call, and a
# caller that gives up early does not stop Neutron from making the ports.
BULK_TIMEOUT = 120.0
# Addresses read per request before an exact-mode bulk create: 40 (IPv4) to 65 (IPv6) bytes of
# URL each, and neutron-server (eventlet) refuses a request line beyond 8 KiB.
_HELD_CHUNK = 100
# A start waiting for a pool port outside any request's deadline (tools, tests): as long as
# the bulk create it waits for may take.
_WAIT_TIMEOUT = BULK_TIMEOUT


class Ledger(Protocol):
    """What the refill needs of the pools (kuryr.domain.ports.pools.Pools)."""

    @property
    def enabled(self) -> bool: ...

    def add_created(self, pool: PortPool, port: Port) -> None: ...

    def delete(self, pool: PortPool, port_id: str) -> None: ...

    def take(self, pool: PortPool, port_id: str) -> Port: ...

    def take_exact(self, subnet_id: str, ip: str) -> Port | None: ...


class Refill:
    def __init__(
        self,
        state: State,
        neutron: NeutronApi,
        journal: Journal,
        mine: Mine,
        config: PoolConfig,
        quiet: Quiet,
        ledger: Ledger,
        takes: Callable[[Port], bool],
    ) -> None:
        """``takes``: whether this host can plug a port (a stray is adopted only then)."""
        self._state = state
        self._neutron = neutron
        self._journal = journal
        self._mine = mine
        self._config = config
        self._quiet = quiet
        self._ledger = ledger
        self._takes = takes
        # Pool ports carry their tag from their bulk create where Neutron keeps it.
        self._post_tags = PostTags()

    def kick(self, pool: PortPool) -> None:
        """Start the pool's refill when starts wait for a port, or it is short of ports by a
        batch or below ``min`` (kuryr.domain.ports.sizing.refill_due)."""
        if not self._ledger.enabled or pool.closing or not pool.started or pool.refill is not None:
            return
        if pool.waiting or sizing.refill_due(
            pool.target, len(pool.free) + pool.creating, self._config
        ):
            pool.refill = background(self._refill(pool), f"pool-{pool.subnet_id}")

    def urgent(self, pool: PortPool) -> bool:
        """The refill must not wait for a pause in Docker's requests: starts wait, the pool
        closes, or starts took it low."""
        low = len(pool.free) < max(self._config.batch, 1)
        return bool(pool.waiting) or pool.closing or (low and bool(pool.demand.takes))

    def _short(self, pool: PortPool) -> int:
        return max(pool.target, self._config.min) - len(pool.free) - pool.creating

    async def _refill(self, pool: PortPool) -> None:
        """The pool's one refill: rounds of one bulk POST each, until the target is met and
        no start waits; starts missing meanwhile join the next round."""
        try:
            if not self.urgent(pool):
                pool.nudge.clear()
                await self._quiet.calm(pool.nudge)
            if time.monotonic() < pool.strays_until:
                await self._adopt_strays(pool)
            if pool.waiting:
                await asyncio.sleep(_COALESCE_SECONDS)
            while not pool.closing and (pool.waiting or self._short(pool) > 0):
                if await self._fill_round(pool) == 0:
                    if pool.waiters:
                        raise BackendError(f"subnet {pool.subnet_id} has no address left")
                    return
            if pool.closing and pool.waiting:
                raise BackendError(f"the network of subnet {pool.subnet_id} is being removed")
        except Exception as exc:
            LOG.warning("refill of the pool of subnet %s failed: %s", pool.subnet_id, exc)
            self.fail_waiters(pool, exc)
        finally:
            pool.refill = None

    async def _fill_round(self, pool: PortPool) -> int:
        """One bulk create: a port per waiting start when some wait, else a refill batch,
        capped so free ports never exceed ``max``. Returns how many ports it tried to make
        (an exact-mode round whose addresses were all refused made none, yet the next round
        has other addresses to try)."""
        # Read once: the addresses of the local state's endpoints, decoded row by row.
        used = self._used_addresses(pool) if pool.row.mode == MODE_EXACT else set()
        asked = self._asked_addresses(pool, used)
        asked_by, pool.asked_by = pool.asked_by, None
        if pool.waiting:
            count = len(pool.waiters)
        else:
            room = self._config.max - len(pool.free) - pool.creating
            count = min(self._config.batch or self._short(pool), room)
        wanted = [desired.fixed_ip(pool.subnet_id, ip) for ip in asked]
        wanted += self._fixed_ips(pool, max(count, 0), used | set(asked))
        if not wanted:
            self._serve_exact(pool, asked)
            return 0
        try:
            with request_ids.waited_for_by(asked_by if pool.waiting else None):
                await self._create_round(pool, wanted)
        finally:
            self._serve_exact(pool, asked)
        self.serve_waiters(pool)
        # Ports made for starts that gave up meanwhile: beyond max they go.
        while len(pool.free) > self._config.max:
            self._ledger.delete(pool, next(reversed(pool.free)))
        return len(wanted)

    def _asked_addresses(self, pool: PortPool, used: set[str]) -> list[str]:
        """The addresses of the exact-mode starts waiting that a bulk create may make (one
        ``used`` or refused is answered at once: its start makes its own port)."""
        held = used | pool.blocked
        for ip in [ip for ip in pool.exact_waiters if ip in held]:
            _answer(pool.exact_waiters.pop(ip), None)
        return list(pool.exact_waiters)

    async def _adopt_strays(self, pool: PortPool) -> None:
        """Take in this subnet's pool ports that no pool knows: made by a bulk create whose
        answer never came (timeout, or a predecessor killed mid-call)."""
        mark = await self._mine.mark()
        found = await self._neutron.query(
            "ports",
            {**mark.query(), "network_id": pool.row.network_id, "name": naming.POOL_PORT_NAME},
        )
        for port in map(Port.from_neutron, found):
            port_id = port.id
            if not mark.owns(port):
                continue
            # Known, or on its way out (a journaled delete): not a stray.
            known = port_id in pool.free or port_id in pool.taken
            known = known or self._journal.state.journal_entry(port_id) is not None
            if known or port.device_id or port.subnet_ids != [pool.subnet_id]:
                continue
            if not self._takes(port):
                continue
            if len(pool.free) + pool.creating >= self._config.max:
                self._journal.record_delete(port_id)
            else:
                self._ledger.add_created(pool, port)
                LOG.info("pool of subnet %s: adopted stray port %s", pool.subnet_id, port_id)

    async def fill(self, pool: PortPool, count: int) -> int:
        """Create up to ``count`` ports (never beyond ``max``); returns how many were made."""
        count = min(count, self._config.max - len(pool.free) - pool.creating)
        if count <= 0:
            return 0
        wanted = self._fixed_ips(pool, count)
        if not wanted:
            return 0
        return len(await self._create_round(pool, wanted))

    async def _create_round(self, pool: PortPool, wanted: list[dict[str, str]]) -> list[Port]:
        """Create the ports and take them in as free; the round is announced as over even
        when it fails, so starts waiting for one of its addresses go on."""
        ips = {f["ip_address"] for f in wanted if "ip_address" in f}
        pool.creating += len(wanted)
        pool.creating_ips |= ips
        try:
            created = await self._create(pool, wanted)
            for port in created:
                self._ledger.add_created(pool, port)
        finally:
            pool.creating -= len(wanted)
            pool.creating_ips -= ips
            pool.round_done.set()
            pool.round_done = asyncio.Event()
        return created

    def _fixed_ips(
        self, pool: PortPool, count: int, used: set[str] | None = None
    ) -> list[dict[str, str]]:
        """``count`` fixed IPs for new pool ports; in exact mode the lowest addresses not
        ``used`` (read from the pool and the local state when not given) nor blocked."""
        subnet_id = pool.subnet_id
        if count <= 0:
            return []
        if pool.row.mode != MODE_EXACT:
            return [desired.fixed_ip(subnet_id) for _ in range(count)]
        if used is None:
            used = self._used_addresses(pool)
        wanted: list[dict[str, str]] = []
        for ip in iter_hosts(pool.row.ranges):
            if ip in used or ip in pool.blocked:
                continue
            wanted.append(desired.fixed_ip(subnet_id, ip))
            if len(wanted) == count:
                break
        return wanted

    def _used_addresses(self, pool: PortPool) -> set[str]:
        used = {pp.ip for pp in (*pool.free.values(), *pool.taken.values())}
        for _, raw in self._state.endpoints().values():
            used.update(ip for sid, ip in Port.from_neutron(raw).fixed_ips if sid == pool.subnet_id)
        return used

    async def _create(self, pool: PortPool, wanted: list[dict[str, str]]) -> list[Port]:
        if pool.row.mode == MODE_EXACT:
            wanted = await self._unheld(pool, wanted)
            if not wanted:
                return []
        tags = self._post_tags.tags()
        mark = await self._mine.mark()
        items = [
            desired.create_body(pool.row.network_id, [f], mark, naming.POOL_PORT_NAME, tags=tags)
            for f in wanted
        ]
        try:
            made = await self._neutron.create_bulk("ports", items, timeout=BULK_TIMEOUT)
            bulk = [Port.from_neutron(raw) for raw in made]
            if tags:
                self._post_tags.learn(bulk)
            return bulk
        except NeutronError as exc:
            if exc.http_status == 0:
                pool.strays_until = time.monotonic() + BULK_TIMEOUT
            if exc.neutron_type not in desired.IP_TAKEN or pool.row.mode != MODE_EXACT:
                raise
        # Exact mode: an address is held outside Kuryr's knowledge; make the others one by one.
        ports: list[Port] = []
        for fixed, body in zip(wanted, items, strict=True):
            try:
                ports.append(Port.from_neutron(await self._neutron.create("ports", body)))
            except NeutronError as exc:
                if exc.neutron_type not in desired.IP_TAKEN:
                    raise
                pool.blocked.add(fixed.get("ip_address", ""))
        return ports

    async def _unheld(self, pool: PortPool, wanted: list[dict[str, str]]) -> list[dict[str, str]]:
        """The addresses no Neutron port holds, read before an exact-mode bulk create (one
        request per ``_HELD_CHUNK`` addresses): Neutron refuses a bulk whole when one address
        is held, and keeps the addresses of its other ports allocated (on the real one still
        a minute later, tests/integration/test_neutron_fake.py), so a start given one of those
        could not have its port. The ones held are blocked for the pool."""
        held: set[str] = set()
        for start in range(0, len(wanted), _HELD_CHUNK):
            query = {
                "network_id": pool.row.network_id,
                "fixed_ips": [
                    f"ip_address={f['ip_address']}" for f in wanted[start : start + _HELD_CHUNK]
                ],
                "fields": ["id", "fixed_ips"],
            }
            held |= {
                ip
                for raw in await self._neutron.query("ports", query)
                for sid, ip in Port.from_neutron(raw).fixed_ips
                if sid == pool.subnet_id
            }
        pool.blocked |= held
        return [f for f in wanted if f["ip_address"] not in held]

    # --- starts waiting ---------------------------------------------------------------------------

    async def wait(self, pool: PortPool) -> Port:
        """A start that found the pool empty: a port of the pool's next bulk create (shared
        with every other start waiting meanwhile)."""
        waiter: asyncio.Future[Port] = asyncio.get_running_loop().create_future()
        pool.waiters.append(waiter)
        try:
            return await self._waited(pool, waiter, f"a port of subnet {pool.subnet_id}")
        finally:
            if waiter in pool.waiters:
                pool.waiters.remove(waiter)

    async def wait_exact(self, pool: PortPool, ip: str) -> Port | None:
        """An exact-mode start that missed: the port a bulk create makes on ``ip`` together
        with the other misses meanwhile; None when the pool cannot make it (the caller makes
        its own port)."""
        if pool.closing or not pool.started or not self._ledger.enabled:
            return None
        # Kuryr's IPAM pools make no exact addresses: their bulk creates have no fallback.
        if pool.row.mode != MODE_EXACT or ip in pool.exact_waiters or ip in pool.blocked:
            return None
        waiter: asyncio.Future[Port | None] = asyncio.get_running_loop().create_future()
        pool.exact_waiters[ip] = waiter
        try:
            return await self._waited(pool, waiter, f"a port on {ip}")
        finally:
            if pool.exact_waiters.get(ip) is waiter:
                del pool.exact_waiters[ip]

    async def _waited(self, pool: PortPool, waiter: asyncio.Future[T], what: str) -> T:
        """A start now waits for ``what``: the refill starts at once, the pool's target grows
        by one, and the start waits as long as its request may."""
        pool.asked_by = pool.asked_by or request_ids.current()
        pool.nudge.set()
        pool.target = min(self._config.max, max(pool.target, self._config.min) + 1)
        self.kick(pool)
        timeout = deadline.clamp(_WAIT_TIMEOUT, f"waiting for {what}")
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise BackendError(
                f"no {what} within {timeout:g}s: Neutron did not create the pool's ports in time"
            ) from None

    def _serve_exact(self, pool: PortPool, asked: list[str]) -> None:
        """The round that was to make ``asked`` is over: each start waiting for one of them
        gets its port, or None when Neutron refused the address."""
        for ip in asked:
            waiter = pool.exact_waiters.pop(ip, None)
            if waiter is not None and not waiter.done():
                _answer(waiter, self._ledger.take_exact(pool.subnet_id, ip))

    async def made(self, pool: PortPool, ip: str) -> None:
        """Return once no bulk create in flight is making a port on ``ip`` (Neutron holds the
        address from the start of the create, so a port made for it meanwhile is refused)."""
        while ip in pool.creating_ips:
            timeout = deadline.clamp(_WAIT_TIMEOUT, f"waiting for the pool port of {ip}")
            try:
                await asyncio.wait_for(pool.round_done.wait(), timeout)
            except TimeoutError:
                raise BackendError(
                    f"the pool port for {ip} was not created within {timeout:g}s"
                ) from None

    def serve_waiters(self, pool: PortPool) -> None:
        while pool.waiters and pool.free:
            waiter = pool.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(self._ledger.take(pool, pool.next_free()))

    def fail_waiters(self, pool: PortPool, exc: Exception) -> None:
        error = exc if isinstance(exc, KuryrError) else BackendError(str(exc))
        waiters, pool.waiters = pool.waiters, []
        exact, pool.exact_waiters = pool.exact_waiters, {}
        pending: list[asyncio.Future[Any]] = [*waiters, *exact.values()]
        for waiter in pending:
            if not waiter.done():
                waiter.set_exception(error)


def _answer(waiter: asyncio.Future[Port | None], port: Port | None) -> None:
    if not waiter.done():
        waiter.set_result(port)
