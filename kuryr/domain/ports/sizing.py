"""How many free ports a pool aims at: the pool sizing rules (pure).

- A new pool aims at ``[pool] initial`` free ports (at least ``min``, at most ``max``): a network
  no container uses much costs Neutron and OVS a handful of ports, not ``max``.
- Every port taken from the pool is counted. The target becomes the most ports taken within
  one ``[pool] window`` (seconds), if that is more than it was (never beyond ``max``). Why this
  rule: a pool only has to hold what the starts take before a refill replaces it, and a refill
  under load needs a few seconds; a burst of N starts within one window makes the next burst
  of N find N ports ready. A larger factor than one would only buy idle ports; a moving average
  would forget a burst before the next one came (bursts repeat: a deploy, a scale-out).
- A port given back within the window of its take no longer counts: the pool served it and
  has it again. Containers started and stopped one after the other (``docker run --rm``, a
  job runner) take one port at a time, however many per window, so they grow no pool and cost
  Neutron no refill; N containers running at once within a window still count N.
- A refill starts once the pool lacks a whole ``batch`` of its target (a bulk create makes at
  least that many anyway), or holds fewer than ``min``, or a start waits; it then fills up to
  the target. Why: a container that stops gives its port back, and a pool at its target that
  refilled at every take would overshoot by a batch (and, at ``max``, delete a port at every
  give-back): a start then a stop would cost a bulk POST and a DELETE.
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


def refill_due(target: int, have: int, config: PoolConfig) -> bool:
    """A refill is worth starting for a pool holding ``have`` free or being-made ports."""
    short = max(target, config.min) - have
    return short > 0 and (short >= max(config.batch, 1) or have < floor(config))


@dataclass
class Demand:
    """When a pool's ports were taken: the takes of the last window, and the last one."""

    window: float
    last: float  # clock of the last take (of the pool's creation before the first)
    # (clock, port id) of the takes within the last window whose port is not back.
    takes: deque[tuple[float, str]] = field(default_factory=deque)

    def took(self, now: float, port_id: str = "") -> int:
        """Count a take at ``now``; returns the takes within the window ending at ``now``
        whose port is still out."""
        self.takes.append((now, port_id))
        self.last = now
        while self.takes and self.takes[0][0] <= now - self.window:
            self.takes.popleft()
        return len(self.takes)

    def returned(self, port_id: str) -> None:
        """The port is back in the pool: its take, if within the window, no longer counts."""
        for i, (_, taken) in enumerate(self.takes):
            if taken == port_id:
                del self.takes[i]
                return

    def idle(self, now: float, idle_after: float) -> bool:
        """No take for ``idle_after`` seconds (never, when ``idle_after`` is 0)."""
        return idle_after > 0 and now - self.last >= idle_after

    def rested(self, now: float) -> None:
        """The pool has shrunk: idleness counts afresh from ``now``."""
        self.takes.clear()
        self.last = now
