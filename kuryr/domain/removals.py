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

A removal gives way to Docker (kuryr.domain.quiet): each of its Neutron calls waits for a
pause in Docker's requests, at most ``[pool] background_longest`` seconds, so a
``docker network create`` that follows a ``docker network rm`` does not queue in
neutron-server behind the removal's calls. A request that waits for a removal (a collision)
nudges it: from then on it runs at full speed.
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
from kuryr.domain.quiet import give_way
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
    the event that cuts a backoff short (Docker asked again), and the one that ends its giving
    way to Docker (a request waits for it)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[Outcome] = []
        self.wake = asyncio.Event()
        self.urgent = asyncio.Event()

    def settle(self, outcome: Exception | None) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(outcome)
        self.waiters.clear()


class _After:
    """Work run after the removals pending when it was asked for (ReleasePool): the CIDR it
    concerns (None: unknown, so it collides with every CIDR), and what ends its giving way."""

    def __init__(self, cidr: IPNetwork | None) -> None:
        self.cidr = cidr
        self.urgent = asyncio.Event()


class Removals:
    """Durable removals of Docker networks from Neutron, each retried until it succeeds.

    Made before the domain objects that wait for removals (kuryr.domain.ipam, the network
    driver); :meth:`start` gives it the removal itself, made from those objects, and resumes
    what a previous daemon left pending."""

    def __init__(self, state: State, first_retry: float = FIRST_RETRY_SECONDS) -> None:
        self._state = state
        self._remove: Remove | None = None
        self._first_retry = first_retry
        self._runs: dict[str, _Run] = {}
        self._after: dict[asyncio.Task[None], _After] = {}
        self._stopped = False

    def start(self, remove: Remove) -> None:
        """Remove networks with ``remove`` (one attempt, idempotent) from now on, starting with
        every removal a previous run of the daemon left pending."""
        self._remove = remove
        pending = self._state.removals()
        if pending:
            LOG.info("resuming %d pending network removal(s)", len(pending))
        for docker_id in pending:
            self._start(docker_id)

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
        after = _After(cidr)

        async def later() -> None:
            give_way(after.urgent)
            await asyncio.wait(tasks)
            try:
                await work()
            except Exception as exc:  # logged: nobody waits for it
                LOG.warning("%s after a network removal failed: %s", name, exc)

        task = background(later(), name)
        self._after[task] = after
        task.add_done_callback(lambda t: self._after.pop(t, None))
        return True

    async def settled(self, collides: Collides, cidrs: Collection[IPNetwork], what: str) -> None:
        """Wait until no pending removal ``collides`` and no work run ``after`` removals
        concerns a CIDR overlapping ``cidrs``; bounded by the request's deadline. What it waits
        for no longer gives way to Docker: this request is Docker's."""
        while True:
            runs = [
                run
                for docker_id, run in self._runs.items()
                if run.task is not None and _collides(self._state.network(docker_id), collides)
            ]
            afters = [
                (task, after)
                for task, after in self._after.items()
                if after.cidr is None or any(_overlap(after.cidr, c) for c in cidrs)
            ]
            if afters:
                # That work first waits for every removal pending when it was asked for.
                runs = list(self._runs.values())
            for run in runs:
                run.urgent.set()
            for _, after in afters:
                after.urgent.set()
            waited = [run.task for run in runs if run.task is not None]
            waited += [task for task, _ in afters]
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
        """Wait until every removal under way, and the work run after them, has ended (at full
        speed from now on)."""
        while self._runs or self._after:
            for urgent in [r.urgent for r in self._runs.values()]:
                urgent.set()
            for urgent in [a.urgent for a in self._after.values()]:
                urgent.set()
            tasks = [run.task for run in self._runs.values() if run.task is not None]
            await asyncio.wait([*tasks, *self._after])

    async def stop(self) -> None:
        """Stop every removal; what is not finished stays recorded for the next start."""
        self._stopped = True
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        tasks += list(self._after)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, docker_id: str) -> _Run:
        if self._remove is None:
            raise RuntimeError("network removals are not started")
        run = self._runs.get(docker_id)
        if run is None:
            run = self._runs[docker_id] = _Run()
            run.task = background(
                self._until_done(self._remove, docker_id, run), f"remove-{docker_id[:12]}"
            )
        return run

    async def _until_done(self, remove: Remove, docker_id: str, run: _Run) -> None:
        give_way(run.urgent)
        failures = 0
        try:
            while True:
                run.wake.clear()
                try:
                    await remove(docker_id)
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
