"""Removals' retry loop: recorded before the first attempt, retried after a failure, dropped
from the state only once an attempt succeeds, resumed from the state; what collides with a
removal under way waits for it (pure asyncio: the removal is a plain function the test
scripts)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from kuryr import deadline
from kuryr.backends.model import Network, Subnet
from kuryr.backends.state import State
from kuryr.domain.quiet import Quiet
from kuryr.domain.removals import (
    MAX_RETRY_SECONDS,
    WAIT_MARGIN_SECONDS,
    Removals,
    overlapping,
    retry_delay,
)
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
    removals = Removals(state, first_retry=0.01)
    removals.start(remove)

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
    removals = Removals(state, first_retry=MAX_RETRY_SECONDS)
    removals.start(remove)

    assert isinstance(await removals.submit(NET), BackendError)
    assert await asyncio.wait_for(removals.submit(NET), 10) is None
    assert state.removals() == []
    await removals.stop()


async def test_pending_removals_are_resumed_from_the_state() -> None:
    state = State.in_memory()
    state.removal_put(NET)
    remove = Scripted(state, failures=0)
    removals = Removals(state)

    removals.start(remove)

    await asyncio.wait_for(remove.done.wait(), 10)
    await asyncio.sleep(0)
    assert state.removals() == []
    await removals.stop()


async def test_stop_keeps_an_unfinished_removal_recorded() -> None:
    state = State.in_memory()
    remove = Scripted(state, failures=1)
    removals = Removals(state, first_retry=MAX_RETRY_SECONDS)
    removals.start(remove)
    assert isinstance(await removals.submit(NET), BackendError)

    await removals.stop()

    assert state.removals() == [NET]
    assert isinstance(await removals.submit(NET), BackendError)
    assert remove.calls == [[NET]]
    assert state.removals() == [NET]


class Held:
    """A removal that ends when the test lets it, and forgets the network as the real one."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.release = asyncio.Event()

    async def __call__(self, docker_id: str) -> None:
        await self.release.wait()
        self.state.forget_network(docker_id)


def leaving(state: State, docker_id: str, cidr: str) -> None:
    subnet = Subnet("s-" + docker_id[:4], "n-" + docker_id[:4], ipaddress.ip_network(cidr), None)
    state.save_network(Network(docker_id, "n-" + docker_id[:4], 1500, [], [subnet]))


async def test_a_request_waits_only_for_the_removals_it_collides_with() -> None:
    state = State.in_memory()
    removal = Held(state)
    removals = Removals(state)
    removals.start(removal)
    leaving(state, NET, "10.9.0.0/24")
    removals.submit(NET)

    # Another CIDR does not wait.
    other = [ipaddress.ip_network("10.9.1.0/24")]
    await asyncio.wait_for(removals.settled(overlapping(other), other, "create"), 1)
    # The same CIDR waits until the removal has ended.
    same = [ipaddress.ip_network("10.9.0.0/23")]
    waiting = asyncio.create_task(removals.settled(overlapping(same), same, "create"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    removal.release.set()
    await asyncio.wait_for(waiting, 1)
    await removals.stop()


async def test_a_collision_that_outlasts_the_request_deadline_is_refused() -> None:
    state = State.in_memory()
    removals = Removals(state)
    removals.start(Held(state))
    leaving(state, NET, "10.9.0.0/24")
    removals.submit(NET)
    cidrs = [ipaddress.ip_network("10.9.0.0/24")]

    with (
        deadline.bounded(WAIT_MARGIN_SECONDS + 0.1),
        pytest.raises(BackendError, match="try again"),
    ):
        await removals.settled(overlapping(cidrs), cidrs, "create")
    await removals.stop()


async def test_work_after_removals_runs_once_they_end_and_holds_its_cidr_meanwhile() -> None:
    state = State.in_memory()
    removal = Held(state)
    removals = Removals(state)
    removals.start(removal)
    ran: list[str] = []

    async def release() -> None:
        ran.append("released")

    # Nothing pending: the caller runs the work itself.
    assert not removals.after(release, None, "release")
    removals.submit(NET)
    cidr = ipaddress.ip_network("10.9.0.0/24")
    assert removals.after(release, cidr, "release")
    # A request for the released CIDR waits for the release too, another does not.
    other = [ipaddress.ip_network("10.9.1.0/24")]
    await asyncio.wait_for(removals.settled(lambda n: False, other, "pool"), 1)
    waiting = asyncio.create_task(removals.settled(lambda n: False, [cidr], "pool"))
    await asyncio.sleep(0.05)
    assert ran == [] and not waiting.done()
    removal.release.set()
    await asyncio.wait_for(waiting, 1)
    assert ran == ["released"]
    await removals.drained()
    await removals.stop()


async def test_a_removal_gives_way_to_docker_until_a_request_waits_for_it() -> None:
    """Each Neutron call of a removal (here ``quiet.turn``, as kuryr.domain.yielding makes it
    before each call) waits while Docker is served; a colliding request ends that."""
    state = State.in_memory()
    quiet = Quiet(pause=60.0, longest=60.0)
    calls: list[str] = []

    async def remove(docker_id: str) -> None:
        await quiet.turn()
        calls.append(docker_id)
        state.forget_network(docker_id)

    removals = Removals(state)
    removals.start(remove)
    leaving(state, NET, "10.9.0.0/24")
    with quiet.serving():
        removals.submit(NET)
        await asyncio.sleep(0.05)
        assert calls == [], "the removal made a call while Docker was served"
        same = [ipaddress.ip_network("10.9.0.0/24")]
        await asyncio.wait_for(removals.settled(overlapping(same), same, "create"), 5)
    assert calls == [NET]
    assert state.removals() == []
    await removals.stop()


async def test_a_removal_that_gives_way_still_ends_when_docker_never_pauses() -> None:
    state = State.in_memory()
    quiet = Quiet(pause=60.0, longest=0.1)
    done = asyncio.Event()

    async def remove(_: str) -> None:
        for _call in range(3):
            await quiet.turn()
        done.set()

    removals = Removals(state)
    removals.start(remove)
    with quiet.serving():
        removals.submit(NET)
        await asyncio.wait_for(done.wait(), 5)
    await removals.stop()
