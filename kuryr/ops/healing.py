"""The daemon heals by itself: periodic reconciliation passes beside serving.

A crash (of this daemon, of dockerd, or Neutron failing during a removal) orphans what a
container held: its port, an address reservation, a pool port taken for it, its VIF. The
daemon finds and reclaims them with :class:`kuryr.ops.reconcile.Reconciler` every ``[reconcile]
interval`` seconds, the first pass ``START_DELAY`` seconds after it starts serving.

Nothing is reclaimed on one look. A pass only notes what it finds orphaned; a resource is
reclaimed by the first pass at least ``grace`` seconds after the pass that first found it,
when every pass in between found it orphaned on the same grounds (a port with the same
device_id). ``grace`` is at least ``request_timeout``: a container start or stop under way
(RequestAddress answered, CreateEndpoint or Join not yet; a port held by an endpoint dockerd
lists only once it has joined) finishes or fails within that time, so it is never judged on
a half-made state. On top of that a port is never judged while the daemon has work in flight
on it (a journaled bookkeeping write or delete not yet applied, an address RequestAddress
gave and no endpoint took yet) or keeps it free in a pool, and only ports of this host
(kuryr.domain.ports.mine) on the daemon's own networks, that dockerd has, are judged. A free pool
port stays in its pool; only when Neutron still shows it with a gone endpoint's device_id is
its cleaning journaled again.

A port the daemon holds is released as DeleteEndpoint would release it (back to its pool,
or deleted, through the journal; its VIF kept or unplugged by kuryr.domain.ports.prewire), so the
local
state, the pools and the VIFs stay right. Every pass and every reclaim first waits for a
pause in Docker's requests (kuryr.domain.quiet): container starts go first.

Bound: a resource orphaned at time t is reclaimed by t + interval + grace (rounded up to a
whole number of intervals) plus the passes' own time and their waits for a pause (at most
``[pool] background_longest`` each); after a restart, by START_DELAY + grace rounded up the
same way. With the defaults (interval 30 s, grace 30 s): about 70 s, and 40 s after a restart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from kuryr import naming
from kuryr.backends.binding.registry import Binders
from kuryr.backends.neutron_api import NeutronApi
from kuryr.backends.state import State
from kuryr.config import Config
from kuryr.domain.endpoints import Endpoint, Endpoints
from kuryr.domain.ipam import Ipam
from kuryr.domain.ports import desired
from kuryr.domain.ports.journal import Journal, background
from kuryr.domain.ports.pools import Pools
from kuryr.domain.ports.port import Port
from kuryr.domain.quiet import Quiet
from kuryr.errors import KuryrError
from kuryr.ops.reconcile import Reconciler, opened
from kuryr.ops.reconcile_plan import Action, Overtaken, Plan
from kuryr.plugin import protocol as p

LOG = logging.getLogger(__name__)

# Seconds after the socket appears before the first pass: dockerd's own restart traffic
# (Leave/DeleteEndpoint of containers it stopped) goes first.
START_DELAY = 5.0

# An action's key (kind, id, what it was judged on) -> when a pass first found it.
Seen = dict[tuple[str, str, str], float]


class DaemonSide:
    """:class:`kuryr.ops.reconcile.Local` of the serving daemon."""

    def __init__(
        self,
        state: State,
        ipam: Ipam,
        pools: Pools,
        endpoints: Endpoints,
        revoke: Callable[[Endpoint], Awaitable[None]],
        bookkeeping: Journal,
    ) -> None:
        """``revoke``: what DeleteEndpoint undoes before the port goes (published ports,
        the expose group)."""
        self._state = state
        self._journal = bookkeeping
        self._ipam = ipam
        self._pools = pools
        self._endpoints = endpoints
        self._revoke = revoke

    def networks(self) -> dict[str, str]:
        removing = set(self._state.removals())
        return {
            n.neutron_id: n.docker_id for n in self._state.networks() if n.docker_id not in removing
        }

    def endpoints(self) -> set[str]:
        return set(self._state.endpoints())

    def busy(self, port: Port) -> bool:
        return self._in_flight(port.id) or (self._free(port.id) and not port.device_id)

    def _in_flight(self, port_id: str) -> bool:
        return self._state.journal_entry(port_id) is not None or self._ipam.broker.reserved(port_id)

    def _free(self, port_id: str) -> bool:
        return any(port_id in pool.free for pool in self._pools.all())

    def _taken(self, port_id: str) -> bool:
        return any(port_id in pool.taken for pool in self._pools.all())

    def idle_taken(self, port_id: str) -> bool:
        return (
            self._taken(port_id) and not self._in_flight(port_id) and self._holder(port_id) is None
        )

    def reclaimer(self, port: Port) -> Callable[[], Awaitable[None]] | None:
        port_id = port.id
        holder = self._holder(port_id)
        if holder is not None:
            return functools.partial(self._end_endpoint, port_id, holder)
        if self._taken(port_id):
            return functools.partial(self._give_back, port)
        if self._free(port_id):
            return functools.partial(self._clean_again, port)
        return None

    def _holder(self, port_id: str) -> str | None:
        """The endpoint of the local state that holds the port."""
        return next(
            (
                eid
                for eid, (_, raw) in self._state.endpoints().items()
                if Port.from_neutron(raw).id == port_id
            ),
            None,
        )

    def _still_idle(self, port_id: str, holder: str | None) -> None:
        """Checked right before the release, with no await after it: the daemon may have taken
        the port up again since the pass judged it."""
        if self._in_flight(port_id) or self._holder(port_id) != holder:
            raise Overtaken(f"port {port_id} is in use again")

    async def _end_endpoint(self, port_id: str, endpoint_id: str) -> None:
        """As Docker's DeleteEndpoint would: forget the endpoint, unpublish its ports, revoke
        its expose group, release its port."""
        self._still_idle(port_id, endpoint_id)
        stored = self._state.endpoint(endpoint_id)
        if stored is None:
            raise Overtaken(f"endpoint {endpoint_id[:12]} is gone meanwhile")
        request = p.EndpointRequest(network_id=stored[0], endpoint_id=endpoint_id)
        await self._endpoints.delete(request, self._revoke)

    async def _give_back(self, port: Port) -> None:
        port_id = port.id
        self._still_idle(port_id, None)
        if not self._taken(port_id):
            raise Overtaken(f"port {port_id} left its pool meanwhile")
        await self._ipam.broker.give_back(port)

    async def _clean_again(self, port: Port) -> None:
        """A free pool port Neutron still shows with a gone endpoint's bookkeeping (the
        journal's record of what Neutron holds went wrong, e.g. a write that landed as the
        daemon was killed): journal its cleaning again, from what Neutron holds. It stays in
        its pool."""
        port_id = port.id
        self._still_idle(port_id, None)
        if not self._free(port_id):
            raise Overtaken(f"port {port_id} left its pool meanwhile")
        with self._state.transaction():
            self._state.save_view(port_id, desired.view_of(port))
            self._journal.record(port, desired.cleaned(port, [naming.POOL_TAG]))


class Healer:
    """The periodic passes: each notes what it finds orphaned, and reclaims what has stayed
    orphaned for ``grace`` seconds."""

    def __init__(
        self,
        config: Config,
        neutron: NeutronApi,
        local: DaemonSide,
        quiet: Quiet,
        binders: Binders | None = None,
        start_delay: float = START_DELAY,
    ) -> None:
        """``binders``: the serving daemon's (None: the passes load their own)."""
        self._config = config
        self._neutron = neutron
        self._binders = binders
        self._local = local
        self._quiet = quiet
        self._start_delay = start_delay
        self._interval = config.reconcile.interval
        self._grace = config.reconcile.grace
        self._seen: Seen = {}  # action key -> when first found
        self._task: asyncio.Task[None] | None = None
        self._never = asyncio.Event()  # a pass is never urgent: it always waits for a pause

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = background(self._run(), "kuryr-reconcile")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self._start_delay)
        while True:
            try:
                async with self.reconciler() as reconciler:
                    while True:
                        await self.one_pass(reconciler)
                        await asyncio.sleep(self._interval)
            except Exception as exc:  # a backend gone, or a bug: the passes must go on
                LOG.warning(
                    "reconciliation pass failed, the next in %gs starts afresh: %s",
                    self._interval,
                    exc,
                    exc_info=not isinstance(exc, KuryrError),
                )
                self._seen.clear()
                await asyncio.sleep(self._interval)

    def reconciler(self) -> AbstractAsyncContextManager[Reconciler]:
        """The passes' reconciler: no age grace of its own (the passes' confirmation is the
        grace), the daemon's view, Neutron client and binders."""
        return opened(
            self._config,
            grace=0.0,
            local=self._local,
            neutron=self._neutron,
            binders=self._binders,
        )

    async def one_pass(self, reconciler: Reconciler) -> list[str]:
        """Plan, note, and reclaim what is confirmed; returns the failures."""
        await self._quiet.calm(self._never)
        started = time.monotonic()
        plan = await reconciler.plan()
        surveyed = time.monotonic()
        self._seen, due = confirm(self._seen, plan, surveyed, self._grace)
        errors: list[str] = []
        for action in due:
            await self._quiet.calm(self._never)
            errors += await reconciler.apply(Plan(actions=[action]))
            self._seen.pop(action.key, None)
        LOG.log(
            logging.INFO if plan.actions else logging.DEBUG,
            "reconciliation: %d orphan(s) found, %d reclaimed, %d error(s), dockerd %s; "
            "survey %.2fs",
            len(plan.actions),
            len(due),
            len(errors),
            "seen" if plan.docker_seen else "not reachable",
            surveyed - started,
        )
        return errors


def confirm(seen: Seen, plan: Plan, now: float, grace: float) -> tuple[Seen, list[Action]]:
    """Note a pass's findings: when each action was first found, given ``seen`` from the pass
    before; and the actions found orphaned for ``grace`` seconds by every pass since the first
    that found them. What this pass did not find is forgotten: found again later, it starts
    over."""
    noted = {action.key: seen.get(action.key, now) for action in plan.actions}
    return noted, [a for a in plan.actions if now - noted[a.key] >= grace]
