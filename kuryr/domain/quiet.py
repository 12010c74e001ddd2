"""When Docker last asked for something, so background work can wait for a pause.

Bookkeeping writes, pool refills and network removals cost Neutron and OVN far more than a
Docker request costs Kuryr, and neutron-server serves them one after the other with the
requests Docker waits for (a container start, a ``docker network create``): run in the middle
of those, they slow them down (on a small host, dockerd competes for the same CPUs too). Work
that can wait waits until Docker has been quiet for ``pause`` seconds, a request still being
served counting as not quiet, but never longer than ``longest`` after it was due, so a host
that never pauses still gets it done.

Background work that makes several Neutron calls in a row (a network removal) gives way
before each one (:func:`give_way`, :meth:`Quiet.turn`): what Docker asks for meanwhile
queues behind at most the one call in flight, and the work still advances by at least one
call every ``longest`` seconds. Whoever waits for that work (a request colliding with a
removal) sets its nudge: then it no longer gives way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Iterator

from kuryr import request_ids

# The nudge of the background work the current task does, when it gives way to Docker.
_GIVING_WAY: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "kuryr_giving_way", default=None
)


def give_way(nudge: asyncio.Event) -> None:
    """From now on, the current task (and the tasks it starts) gives way to Docker's requests
    before each Neutron call (:meth:`Quiet.turn`), until ``nudge`` is set. Called at the top
    of a background task, whose context is its own."""
    _GIVING_WAY.set(nudge)


def giving_way() -> contextvars.Context:
    """A fresh context (no Docker request's deadline) for a task doing part of the current
    task's work: it gives way as the current task does, if it does, and its Neutron requests
    carry the id of the Docker request the current task serves, if it serves one (that request
    waits for them: they are its own)."""
    context = contextvars.Context()
    nudge = _GIVING_WAY.get()
    if nudge is not None:
        context.run(give_way, nudge)
    rid = request_ids.current()
    if rid is not None:
        context.run(request_ids.adopt, rid)
    return context


class Quiet:
    def __init__(self, pause: float, longest: float) -> None:
        self.pause = pause
        self.longest = longest
        self._last = 0.0  # wall clock of the end of Docker's last request
        self._serving = 0  # Docker's requests being served

    def touch(self) -> None:
        """Docker asked for something."""
        self._last = time.time()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Docker waits for an answer meanwhile: busy until ``pause`` after the answer."""
        self._serving += 1
        self.touch()
        try:
            yield
        finally:
            self._serving -= 1
            self.touch()

    def due(self, at: float) -> float:
        """When work due at ``at`` (wall clock) may run: after a pause, at the latest
        ``longest`` after ``at``."""
        last = time.time() if self._serving else self._last
        return max(at, min(last + self.pause, at + self.longest))

    async def calm(self, nudge: asyncio.Event) -> None:
        """Wait for a pause (at most ``longest``); return early once ``nudge`` is set."""
        until = time.time() + self.longest
        while not nudge.is_set():
            wait = min(self.due(time.time()), until) - time.time()
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudge.wait(), wait)

    async def turn(self) -> None:
        """Before a Neutron call: wait for a pause if the current task gives way
        (:func:`give_way`), else return at once."""
        nudge = _GIVING_WAY.get()
        if nudge is not None:
            await self.calm(nudge)
