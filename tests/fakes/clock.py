"""A monotonic clock that moves only when the test says: the pools' demand (window,
idle_after) is timed without sleeping."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
