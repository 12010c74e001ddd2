"""kuryr.domain.quiet: when background work may run after Docker's last request, and how
work that gives way to Docker waits before each Neutron call."""

from __future__ import annotations

import asyncio
import contextvars
import time

import pytest

from kuryr.domain.quiet import Quiet, give_way, giving_way


def test_work_runs_when_due_if_docker_is_quiet() -> None:
    quiet = Quiet(pause=1.0, longest=5.0)
    at = time.time()
    assert quiet.due(at) == at


def test_work_waits_for_a_pause_after_the_last_request() -> None:
    quiet = Quiet(pause=1.0, longest=5.0)
    at = time.time()
    quiet.touch()
    assert at + 0.9 < quiet.due(at) <= time.time() + 1.0


def test_work_never_waits_longer_than_longest() -> None:
    quiet = Quiet(pause=100.0, longest=5.0)
    at = time.time()
    quiet.touch()
    assert quiet.due(at) == at + 5.0


def test_without_a_pause_nothing_waits() -> None:
    quiet = Quiet(pause=0.0, longest=0.0)
    quiet.touch()
    at = time.time()
    assert quiet.due(at) == at


async def test_calm_returns_at_once_when_nudged() -> None:
    quiet = Quiet(pause=60.0, longest=60.0)
    quiet.touch()
    nudge = asyncio.Event()
    waiting = asyncio.create_task(quiet.calm(nudge))
    await asyncio.sleep(0)
    assert not waiting.done()
    nudge.set()
    await asyncio.wait_for(waiting, 5.0)


async def test_calm_returns_once_docker_paused() -> None:
    quiet = Quiet(pause=0.05, longest=60.0)
    quiet.touch()
    await asyncio.wait_for(quiet.calm(asyncio.Event()), 5.0)


@pytest.mark.parametrize("pause", [0.0, 0.05])
async def test_calm_without_requests_does_not_wait(pause: float) -> None:
    await asyncio.wait_for(Quiet(pause, 60.0).calm(asyncio.Event()), 5.0)


async def test_a_request_being_served_is_not_a_pause() -> None:
    quiet = Quiet(pause=0.1, longest=60.0)
    with quiet.serving():
        # Longer than a pause after it arrived, a request still served keeps work waiting.
        await asyncio.sleep(0.2)
        assert quiet.due(time.time()) >= time.time() + 0.09
    assert time.time() + 0.09 < quiet.due(time.time()) <= time.time() + 0.1


async def test_turn_waits_only_in_work_that_gives_way() -> None:
    quiet = Quiet(pause=60.0, longest=60.0)
    quiet.touch()
    # Outside such work (a Docker request's own Neutron calls): at once.
    await asyncio.wait_for(quiet.turn(), 1.0)
    nudge = asyncio.Event()

    async def background() -> None:
        give_way(nudge)
        await quiet.turn()

    waiting = asyncio.create_task(background(), context=contextvars.Context())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    nudge.set()
    await asyncio.wait_for(waiting, 5.0)


async def test_work_that_gives_way_resumes_after_a_pause_or_after_longest() -> None:
    nudge = asyncio.Event()

    async def turn(quiet: Quiet) -> float:
        give_way(nudge)
        started = time.monotonic()
        await quiet.turn()
        return time.monotonic() - started

    paused = Quiet(pause=0.2, longest=60.0)
    with paused.serving():
        waiting = asyncio.create_task(turn(paused), context=contextvars.Context())
        await asyncio.sleep(0.3)
        assert not waiting.done(), "a request still served is no pause"
    assert 0.45 <= await asyncio.wait_for(waiting, 5.0) < 2.0
    never_paused = Quiet(pause=60.0, longest=0.3)
    with never_paused.serving():
        assert 0.25 <= await asyncio.wait_for(turn(never_paused), 5.0) < 2.0


async def test_a_task_started_by_work_that_gives_way_gives_way_too() -> None:
    quiet = Quiet(pause=60.0, longest=60.0)
    quiet.touch()
    nudge = asyncio.Event()

    async def work() -> asyncio.Task[None]:
        give_way(nudge)
        return asyncio.create_task(quiet.turn(), context=giving_way())

    part = await asyncio.create_task(work(), context=contextvars.Context())
    await asyncio.sleep(0.05)
    assert not part.done()
    nudge.set()
    await asyncio.wait_for(part, 5.0)
    # Outside work that gives way, the context carries nothing.
    await asyncio.wait_for(asyncio.create_task(quiet.turn(), context=giving_way()), 1.0)
