"""Network removals owed to Neutron, journaled locally before Docker gets its answer.

dockerd forgets a network whatever DeleteNetwork answers (libnetwork honours only a
"forbidden" error), and removing one from Neutron may outlast the request (a loaded Neutron
takes ~0.3-1 s per pool port, even side by side). So the removal is recorded in the local
state first, then run in the background until it succeeds: a failure (Neutron down, a port
still in the way) is retried with backoff, and removals a stopped or killed daemon left
pending are resumed when the next one starts.
The removal itself must be idempotent: a network already gone from Neutron is a success.

DeleteNetwork answers as soon as the removal is recorded, so what Docker sends next may meet
it still under way. What would collide with it waits for it, within the request's deadline:
a CreateNetwork or RequestPool whose CIDRs overlap a leaving network's subnets, or that adopts
a Neutron network (it may be the one leaving). A ReleasePool that comes while removals are
pending is run after them (``after``): its subnetpool cleanup needs the subnets gone, and
the removal itself deletes the ``kuryrPool-*`` subnetpools of the subnets it removes, so a
daemon killed before the release ran leaves no subnetpool behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Collection

from kuryr import deadline
from kuryr.backends.model import IPNetwork, Network
from kuryr.backends.state import State
from kuryr.domain.ports.journal import background
from kuryr.errors import BackendError, KuryrError
from kuryr.plugin import protocol as p

# CreateNetwork options that adopt an existing Neutron network (kuryr.domain.networks).
ADOPTING = ("neutron.net.uuid", "neutron.net.name")

LOG = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0

# Time a request keeps for its own work after waiting for a removal.
WAIT_MARGIN_SECONDS = 2.0

Remove = Callable[[str], Awaitable[None]]
# Which leaving networks a request must wait for.
Collides = Callable[[Network], bool]
# What one attempt ended with: None when the network is out of Neutron.
Outcome = asyncio.Future[Exception | None]


def retry_delay(failures: int, first: float = FIRST_RETRY_SECONDS) -> float:
    """Seconds before the next attempt after ``failures`` failed ones in a row (>= 1)."""
    return min(first * 2 ** (failures - 1), MAX_RETRY_SECONDS)


class _Run:
    """One network's removal under way: its task, who waits for the next attempt's outcome,
    and the event that cuts a backoff short (Docker asked again)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[Outcome] = []
        self.wake = asyncio.Event()

    def settle(self, outcome: Exception | None) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(outcome)
        self.waiters.clear()


class Removals:
    """Durable removals of Docker networks from Neutron, each retried until it succeeds."""

    def __init__(
        self, state: State, remove: Remove, first_retry: float = FIRST_RETRY_SECONDS
    ) -> None:
        self._state = state
        self._remove = remove
        self._first_retry = first_retry
        self._runs: dict[str, _Run] = {}
        # Work run after the removals pending when it was asked for (ReleasePool), with the
        # CIDR it concerns (None: unknown, so it collides with every CIDR).
        self._after: dict[asyncio.Task[None], IPNetwork | None] = {}
        self._stopped = False

    def submit(self, docker_id: str) -> Outcome:
        """Record the removal (durable when this returns) and start it; the future gives the
        next attempt's outcome. A removal already under way is retried now, not started twice."""
        self._state.removal_put(docker_id)
        waiter: Outcome = asyncio.get_running_loop().create_future()
        if self._stopped:
            waiter.set_result(
                BackendError(
                    f"network {docker_id[:12]}: the daemon is stopping; "
                    "its removal from Neutron resumes at the next start"
                )
            )
            return waiter
        run = self._start(docker_id)
        run.waiters.append(waiter)
        run.wake.set()
        return waiter

    def pending(self) -> list[str]:
        """Docker ids of the removals under way."""
        return list(self._runs)

    def after(self, work: Callable[[], Awaitable[None]], cidr: IPNetwork | None, name: str) -> bool:
        """Run ``work`` in the background once the removals now under way have ended (done or
        stopped); False (nothing started) when none is pending: the caller runs it itself."""
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        if not tasks or self._stopped:
            return False

        async def later() -> None:
            await asyncio.wait(tasks)
            try:
                await work()
            except Exception as exc:  # logged: nobody waits for it
                LOG.warning("%s after a network removal failed: %s", name, exc)

        task = background(later(), name)
        self._after[task] = cidr
        task.add_done_callback(lambda t: self._after.pop(t, None))
        return True

    async def settled(self, collides: Collides, cidrs: Collection[IPNetwork], what: str) -> None:
        """Wait until no pending removal ``collides`` and no work run ``after`` removals
        concerns a CIDR overlapping ``cidrs``; bounded by the request's deadline."""
        while True:
            waited = [
                run.task
                for docker_id, run in self._runs.items()
                if run.task is not None and _collides(self._state.network(docker_id), collides)
            ]
            waited += [
                task
                for task, cidr in self._after.items()
                if cidr is None or any(_overlap(cidr, c) for c in cidrs)
            ]
            if not waited:
                return
            left = deadline.remaining()
            timeout = None if left is None else max(left - WAIT_MARGIN_SECONDS, 0.0)
            LOG.info("%s waits for %d pending network removal(s)", what, len(waited))
            _, unfinished = await asyncio.wait(waited, timeout=timeout)
            if unfinished:
                raise BackendError(
                    f"{what}: a network removal it collides with is still under way in Neutron "
                    "(retried in the background: see `kuryr status`); try again"
                )

    async def drained(self) -> None:
        """Wait until every removal under way, and the work run after them, has ended."""
        while self._runs or self._after:
            tasks = [run.task for run in self._runs.values() if run.task is not None]
            await asyncio.wait([*tasks, *self._after])

    def resume(self) -> None:
        """Start every removal a previous run of the daemon left pending."""
        pending = self._state.removals()
        if pending:
            LOG.info("resuming %d pending network removal(s)", len(pending))
        for docker_id in pending:
            self._start(docker_id)

    async def stop(self) -> None:
        """Stop every removal; what is not finished stays recorded for the next start."""
        self._stopped = True
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        tasks += list(self._after)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, docker_id: str) -> _Run:
        run = self._runs.get(docker_id)
        if run is None:
            run = self._runs[docker_id] = _Run()
            run.task = background(self._until_done(docker_id, run), f"remove-{docker_id[:12]}")
        return run

    async def _until_done(self, docker_id: str, run: _Run) -> None:
        failures = 0
        try:
            while True:
                run.wake.clear()
                try:
                    await self._remove(docker_id)
                except Exception as exc:  # a bug must not end the retries either
                    failures += 1
                    delay = retry_delay(failures, self._first_retry)
                    LOG.warning(
                        "removal of network %s failed (attempt %d), retry in %.0fs: %s",
                        docker_id[:12],
                        failures,
                        delay,
                        exc,
                        exc_info=not isinstance(exc, KuryrError),
                    )
                    run.settle(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(run.wake.wait(), delay)
                    continue
                self._state.removal_done(docker_id)
                if failures:
                    LOG.info("network %s removed after %d retries", docker_id[:12], failures)
                run.settle(None)
                return
        finally:
            self._runs.pop(docker_id, None)
            for waiter in run.waiters:
                waiter.cancel()


def _collides(network: Network | None, collides: Collides) -> bool:
    # A removal whose network the state no longer holds has left Neutron but for its record.
    return network is not None and collides(network)


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def overlapping(cidrs: Collection[IPNetwork]) -> Collides:
    """A leaving network with a subnet overlapping one of ``cidrs``."""
    return lambda network: any(_overlap(s.cidr, c) for s in network.subnets for c in cidrs)


def pool_cidrs(req: p.CreateNetworkRequest) -> list[IPNetwork]:
    """The CIDRs of a CreateNetwork's pools (the null IPAM driver's 0.0.0.0/0 left out)."""
    found = (ipaddress.ip_network(d.pool, strict=False) for d in [*req.ipv4_data, *req.ipv6_data])
    return [cidr for cidr in found if cidr.prefixlen > 0]


def colliding(req: p.CreateNetworkRequest) -> Collides:
    """The leaving networks a CreateNetwork waits for: those with overlapping subnets (the same
    subnetpool, the same router), and every one when it adopts a Neutron network by name or
    uuid (it may be the one leaving, whose claims must be gone first)."""
    if any(req.generic_options.get(key) for key in ADOPTING):
        return lambda network: True
    return overlapping(pool_cidrs(req))
