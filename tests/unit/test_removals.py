"""Removals' retry loop: recorded before the first attempt, retried after a failure, dropped
from the state only once an attempt succeeds, resumed from the state (pure asyncio: the
removal is a plain function the test scripts)."""

from __future__ import annotations

import asyncio

from kuryr.backends.state import State
from kuryr.domain.removals import MAX_RETRY_SECONDS, Removals, retry_delay
from kuryr.errors import BackendError

NET = "a" * 64


class Scripted:
    """A removal that fails ``failures`` times, then succeeds; records what the state held."""

    def __init__(self, state: State, failures: int) -> None:
        self.state = state
        self.failures = failures
        self.calls: list[list[str]] = []
        self.done = asyncio.Event()

    async def __call__(self, docker_id: str) -> None:
        self.calls.append(self.state.removals())
        if len(self.calls) <= self.failures:
            raise BackendError(f"Neutron is down ({docker_id[:4]})")
        self.done.set()


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry_delay(50) == MAX_RETRY_SECONDS


async def test_a_failed_removal_is_retried_and_forgotten_once_done() -> None:
    state = State.in_memory()
    remove = Scripted(state, failures=2)
    removals = Removals(state, remove, first_retry=0.01)

    first = await removals.submit(NET)

    assert isinstance(first, BackendError)
    assert remove.calls == [[NET]]
    await asyncio.wait_for(remove.done.wait(), 10)
    await asyncio.sleep(0)
    assert len(remove.calls) == 3
    assert state.removals() == []
    await removals.stop()


async def test_asking_again_retries_at_once_instead_of_after_the_backoff() -> None:
    state = State.in_memory()
    remove = Scripted(state, failures=1)
    removals = Removals(state, remove, first_retry=MAX_RETRY_SECONDS)

    assert isinstance(await removals.submit(NET), BackendError)
    assert await asyncio.wait_for(removals.submit(NET), 10) is None
    assert state.removals() == []
    await removals.stop()


async def test_pending_removals_are_resumed_from_the_state() -> None:
    state = State.in_memory()
    state.removal_put(NET)
    remove = Scripted(state, failures=0)
    removals = Removals(state, remove)

    removals.resume()

    await asyncio.wait_for(remove.done.wait(), 10)
    await asyncio.sleep(0)
    assert state.removals() == []
    await removals.stop()


async def test_stop_keeps_an_unfinished_removal_recorded() -> None:
    state = State.in_memory()
    remove = Scripted(state, failures=1)
    removals = Removals(state, remove, first_retry=MAX_RETRY_SECONDS)
    assert isinstance(await removals.submit(NET), BackendError)

    await removals.stop()

    assert state.removals() == [NET]
    assert isinstance(await removals.submit(NET), BackendError)
    assert remove.calls == [[NET]]
    assert state.removals() == [NET]
