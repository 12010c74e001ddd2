"""When Docker last asked for something, so background work can wait for a pause.

Bookkeeping writes and pool refills cost Neutron and OVN far more CPU than a container start
costs Kuryr; run in the middle of a burst of starts they slow the burst down (on a small
host, dockerd competes for the same CPUs). Work that can wait waits until Docker has been
quiet for ``pause`` seconds, but never longer than ``longest`` after it was due, so a host
that never pauses still gets it done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class Quiet:
    def __init__(self, pause: float, longest: float) -> None:
        self.pause = pause
        self.longest = longest
        self._last = 0.0  # wall clock of Docker's last request

    def touch(self) -> None:
        """Docker asked for something."""
        self._last = time.time()

    def due(self, at: float) -> float:
        """When work due at ``at`` (wall clock) may run: after a pause, at the latest
        ``longest`` after ``at``."""
        return max(at, min(self._last + self.pause, at + self.longest))

    async def calm(self, nudge: asyncio.Event) -> None:
        """Wait for a pause (at most ``longest``); return early once ``nudge`` is set."""
        until = time.time() + self.longest
        while not nudge.is_set():
            wait = min(self.due(time.time()), until) - time.time()
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudge.wait(), wait)
