"""How many free ports a pool aims at: the pool sizing rules (pure).

- A new pool aims at ``[pool] initial`` free ports (at least ``min``, at most ``max``): a network
  no container uses much costs Neutron and OVS a handful of ports, not ``max``.
- Every port taken from the pool is counted. The target becomes the most ports taken within
  one ``[pool] window`` (seconds), if that is more than it was (never beyond ``max``). Why this
  rule: a pool only has to hold what the starts take before a refill replaces it, and a refill
  under load needs a few seconds; a burst of N starts within one window makes the next burst
  of N find N ports ready. A larger factor than one would only buy idle ports; a moving average
  would forget a burst before the next one came (bursts repeat: a deploy, a scale-out).
- After ``[pool] idle_after`` seconds without a take, the target falls back to ``min`` (the
  floor) and the free ports beyond it are deleted in the background (0: pools never shrink).

``min`` keeps kuryr-libnetwork's meaning (refill when fewer are free) and is also the floor;
``max`` caps free-or-being-created ports; ``batch`` is the least a refill creates at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kuryr.config import PoolConfig


def floor(config: PoolConfig) -> int:
    """Free ports an idle pool keeps."""
    return max(min(config.min, config.max), 0)


def initial(config: PoolConfig) -> int:
    """Free ports a new pool aims at."""
    return min(max(config.initial, config.min), config.max)


def grown(target: int, taken_in_window: int, config: PoolConfig) -> int:
    """The target once ``taken_in_window`` ports were taken within one window."""
    return min(max(target, taken_in_window, floor(config)), config.max)


@dataclass
class Demand:
    """When a pool's ports were taken: the takes of the last window, and the last one."""

    window: float
    last: float  # clock of the last take (of the pool's creation before the first)
    takes: deque[float] = field(default_factory=deque)

    def took(self, now: float) -> int:
        """Count a take at ``now``; returns the takes within the window ending at ``now``."""
        self.takes.append(now)
        self.last = now
        while self.takes and self.takes[0] <= now - self.window:
            self.takes.popleft()
        return len(self.takes)

    def idle(self, now: float, idle_after: float) -> bool:
        """No take for ``idle_after`` seconds (never, when ``idle_after`` is 0)."""
        return idle_after > 0 and now - self.last >= idle_after

    def rested(self, now: float) -> None:
        """The pool has shrunk: idleness counts afresh from ``now``."""
        self.takes.clear()
        self.last = now
