"""Network removals owed to Neutron, journaled locally before Docker gets its answer.

dockerd forgets a network whatever DeleteNetwork answers (libnetwork honours only a
"forbidden" error), and removing one from Neutron may outlast the request (a loaded Neutron
takes ~0.3-1 s per pool port, even side by side). So the removal is recorded in the local
state first, then run in the background until it succeeds: a failure (Neutron down, a port
still in the way) is retried with backoff, and removals a stopped or killed daemon left
pending are resumed when the next one starts.
The removal itself must be idempotent: a network already gone from Neutron is a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from kuryr.backends.state import State
from kuryr.domain.ports.journal import background
from kuryr.errors import BackendError, KuryrError

LOG = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0

Remove = Callable[[str], Awaitable[None]]
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
