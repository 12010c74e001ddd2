"""The ledger of one port pool: which of its ports are free, taken or being made (pure)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from kuryr.backends.state import PoolPort, PoolRow
from kuryr.domain.ports.port import Port
from kuryr.domain.ports.sizing import Demand


@dataclass
class PortPool:
    row: PoolRow
    demand: Demand  # when its ports were taken: its target follows (kuryr.domain.ports.sizing)
    free: dict[str, PoolPort] = field(default_factory=dict)  # port id -> port, oldest first
    taken: dict[str, PoolPort] = field(default_factory=dict)
    creating: int = 0
    # Exact mode: addresses a bulk create in flight will hold, and the end of that round (a
    # start given one of them waits for the round instead of racing it for the address).
    creating_ips: set[str] = field(default_factory=set)
    round_done: asyncio.Event = field(default_factory=asyncio.Event)
    refill: asyncio.Task[None] | None = None
    closing: bool = False
    started: bool = False  # keep the pool filled (its network exists, or a container asked)
    target: int = 0  # refill up to this many free ports; follows demand, up to max
    waiters: list[asyncio.Future[Port]] = field(default_factory=list)  # starts on a miss
    # Exact mode: starts that missed the address Docker chose, by address; None tells one its
    # address could not be made in a bulk create (it makes its own port).
    exact_waiters: dict[str, asyncio.Future[Port | None]] = field(default_factory=dict)
    # The id (kuryr.request_ids) of a Docker request waiting for the next bulk create, which
    # sends it: the create is that request's own Neutron work.
    asked_by: str | None = None
    nudge: asyncio.Event = field(default_factory=asyncio.Event)  # a refill must not wait
    blocked: set[str] = field(default_factory=set)  # exact mode: addresses Neutron refused
    # Until then (monotonic), ports of a bulk create that got no answer may still show up.
    strays_until: float = 0.0
    wired: set[str] = field(default_factory=set)  # free ports sent to be plugged ahead
    wire_target: int = 1  # free ports kept plugged ahead; raised by starts that found none

    @property
    def subnet_id(self) -> str:
        return self.row.subnet_id

    @property
    def waiting(self) -> int:
        """Starts waiting for a port of this pool's next bulk create."""
        return len(self.waiters) + len(self.exact_waiters)

    def next_free(self) -> str:
        """The free port the next start takes (the pool has one): the newest plugged ahead,
        which is the port back from a container most recently when one is (its VIF kept, and
        ACTIVE in Neutron: its join reads no status), else the oldest free port."""
        wired = (pid for pid in reversed(self.free) if pid in self.wired)
        return next(wired, next(iter(self.free)))

    def summary(self) -> dict[str, Any]:
        return {
            "subnet_id": self.subnet_id,
            "network_id": self.row.network_id,
            "mode": self.row.mode,
            "free": len(self.free),
            "taken": len(self.taken),
            "creating": self.creating,
            "target": self.target,
            "waiting": self.waiting,
            "free_addresses": sorted(pp.ip for pp in self.free.values()),
        }
