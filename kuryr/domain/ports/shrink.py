"""Idle pools shrink: a pool nobody took a port from for ``[pool] idle_after`` seconds falls
back to its floor (``min``, kuryr.domain.ports.sizing), and its free ports beyond it are
deleted in the background (journaled, as every pool delete), so N hosts times M networks do not
keep their busiest hour's ports, OVS interfaces and veths for good."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import Protocol

from kuryr.backends.state import MODE_EXACT
from kuryr.config import PoolConfig
from kuryr.domain.ports import sizing
from kuryr.domain.ports.journal import background, stopped
from kuryr.domain.ports.ledger import PortPool

LOG = logging.getLogger(__name__)


class Ledger(Protocol):
    """What shrinking needs of the pools (kuryr.domain.ports.pools.Pools)."""

    @property
    def enabled(self) -> bool: ...

    def all(self) -> list[PortPool]: ...

    def delete(self, pool: PortPool | None, port_id: str) -> None: ...


class Shrink:
    def __init__(self, ledger: Ledger, config: PoolConfig, clock: Callable[[], float]) -> None:
        self._ledger = ledger
        self._config = config
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Look for idle pools from now on (never when ``idle_after`` is 0)."""
        if self._ledger.enabled and self._config.idle_after > 0 and self._task is None:
            self._task = background(self._loop(), "pool-shrink")

    async def stop(self) -> None:
        if self._task is not None:
            await stopped(self._task)
            self._task = None

    async def _loop(self) -> None:
        # A quarter of idle_after between looks: a pool shrinks at most a quarter late, and an
        # idle daemon wakes rarely.
        period = max(self._config.idle_after / 4, 1.0)
        while True:
            await asyncio.sleep(period)
            try:
                self.idle()
            except Exception:
                LOG.exception("shrinking idle pools failed; tried again in %gs", period)

    def idle(self) -> int:
        """Shrink every pool idle for ``idle_after`` seconds to the floor; returns how many
        free ports go."""
        now = self._clock()
        keep = sizing.floor(self._config)
        gone = 0
        for pool in self._ledger.all():
            busy = pool.closing or pool.waiting or pool.refill is not None
            if busy or not pool.demand.idle(now, self._config.idle_after):
                continue
            pool.target = keep
            pool.demand.rested(now)
            surplus = surplus_of(pool, keep)
            for port_id in surplus:
                self._ledger.delete(pool, port_id)
            if surplus:
                LOG.info(
                    "pool of subnet %s idle: %d free port(s) deleted, %d kept",
                    pool.subnet_id,
                    len(surplus),
                    len(pool.free),
                )
            gone += len(surplus)
        return gone


def surplus_of(pool: PortPool, keep: int) -> list[str]:
    """The free ports beyond ``keep`` an idle pool gives up: those the next starts would take
    last (the newest; in exact mode the highest addresses), unplugged ones first (no VIF to
    remove)."""
    order = list(reversed(pool.free.values()))
    if pool.row.mode == MODE_EXACT:
        order.sort(key=lambda pp: int(ipaddress.ip_address(pp.ip)), reverse=True)
    order.sort(key=lambda pp: pp.port_id in pool.wired)
    return [pp.port_id for pp in order[: max(len(order) - keep, 0)]]
