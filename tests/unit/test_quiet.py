"""kuryr.domain.quiet: when background work may run after Docker's last request."""

from __future__ import annotations

import asyncio
import time

import pytest

from kuryr.domain.quiet import Quiet


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
