"""The Neutron status of this host's container ports: ACTIVE within a bound, and kept so.

Join answers once OVN has wired the VIF (``ovn-installed``); Neutron marks the port ACTIVE
later, when its own handler of OVN's events gets to the Logical_Switch_Port going up. That
handler is one thread per neutron-server worker and spends ~1-3 s on each port status change,
so under load it lags: statuses can trail OVN by a minute.

The daemon checks, off the start path, with one Neutron GET for many ports at a time, and
each port's VIF in the local OVSDB (no remote call): a port that joined is polled every
:data:`POLL` seconds until Neutron says ACTIVE, and the ports of every endpoint the local
state holds are checked every :data:`SWEEP` seconds (a port that went DOWN while its container
runs, or whose VIF the backend no longer wires, is then polled again). A VIF the backend has
not wired is logged and re-attached at once. A port not ACTIVE ``bound`` seconds after its
container joined (or after it was seen DOWN) is logged with the reason the host can see; a
VIF the backend has wired while Neutron still says DOWN is most likely waiting in Neutron's
queue, and a re-attachment would add two more status changes to that queue, so it is
re-attached only :data:`WIRED_PATIENCE` times ``bound`` after its container joined (Neutron
lost the event, or wrote the port's binding after OVN had reported it up). Each port gets at
most :data:`REPAIRS` repairs per container. The last status seen (and why it is
not ACTIVE) is kept in the local state for ``kuryr port``.

A port seen ACTIVE whose VIF nobody has plugged, unplugged or re-attached since (its container
left and it went back to its pool with its VIF kept, kuryr.domain.ports.prewire) is ACTIVE
when its next container joins: OVN never released it, so Neutron never changed its status.
That join costs Neutron no status read (steady state: a start's only requests are its
bookkeeping); the sweep still reads it with every other endpoint's port. A free port plugged
ahead (a refill's) is read along with the next read the watcher makes anyway, or by the next
sweep: once seen ACTIVE, its first container's join reads nothing either, where each join
from a fresh refill would otherwise read its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kuryr.backends.binding.base import Binder, Vif
from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import State
from kuryr.domain.ports.journal import background, stopped
from kuryr.errors import KuryrError

LOG = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
# Status of a port Neutron no longer has.
GONE = "GONE"
# Seconds between checks of ports that joined and are not ACTIVE yet.
POLL = 1.0
# Seconds between checks of every endpoint's port.
SWEEP = 30.0
# Re-attachments per port and container.
REPAIRS = 2
# A VIF the backend has wired is re-attached this many bounds after its container joined.
WIRED_PATIENCE = 4
# Reads of a port plugged ahead that found it not ACTIVE before it is left to its join (a
# port that never goes ACTIVE, e.g. an unbound one, is not read at every sweep forever).
AHEAD_READS = 3
# Port ids per Neutron GET (the URL stays well under common limits).
_CHUNK = 50


class Binders(Protocol):
    """What the watcher needs of kuryr.backends.binding.registry.Binders."""

    def for_vif_type(self, vif_type: str) -> Binder: ...


@dataclass(eq=False)
class _Ahead:
    """A plug ahead of a free port; compared by identity: a read that began before a later
    plug of the port teaches nothing about it."""

    reads: int = 0


@dataclass
class _Watched:
    since: float  # monotonic: joined, or first seen not ACTIVE
    repairs: int = 0
    warned: bool = False


def describe(state: State, port_id: str) -> str | None:
    """The status ``kuryr port`` shows: NeutronApi's as last seen, with the reason when not
    ACTIVE; None when the daemon has not checked the port yet."""
    row = state.port_status(port_id)
    if row is None:
        return None
    return f"{row.status}: {row.reason}" if row.reason else row.status


class PortStatus:
    def __init__(
        self,
        neutron: NeutronApi,
        state: State,
        binders: Binders,
        vif_of: Callable[[str], Vif | None],
        bound: float,
        plug_timeout: float,
    ) -> None:
        """``vif_of(port_id)``: the VIF of an endpoint's port, from the local state (None
        once the endpoint is gone); ``bound``: seconds a port may take to go ACTIVE;
        ``plug_timeout``: how long a repair waits for the backend."""
        self._neutron = neutron
        self._state = state
        self._binders = binders
        self._vif_of = vif_of
        self.bound = bound
        self._plug_timeout = plug_timeout
        self._watched: dict[str, _Watched] = {}
        self._given_up: set[str] = set()  # repairs spent: checked by the sweep only
        # Seen ACTIVE, and their VIF untouched since (kuryr.domain.ports.prewire says when
        # it is not): a container joining one of them finds it ACTIVE.
        self._settled: set[str] = set()
        # Plugged ahead, free, not seen ACTIVE yet: read along with other ports.
        self._ahead: dict[str, _Ahead] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_sweep = 0.0

    # --- what the endpoints tell -----------------------------------------------------------

    def joined(self, port_id: str) -> None:
        """The port's container joined: poll its status until ACTIVE, unless it was ACTIVE
        with the very VIF the container got (no status read: nothing changed for Neutron)."""
        self._ahead.pop(port_id, None)
        if port_id in self._settled:
            self._state.save_port_status(port_id, ACTIVE)
            return
        self._watched[port_id] = _Watched(time.monotonic())
        self._wake.set()

    def left(self, port_id: str) -> None:
        """The endpoint is gone: its port's status is no longer the container's (what is
        known of its VIF stays, for the port's next container when its VIF is kept)."""
        self._watched.pop(port_id, None)
        self._given_up.discard(port_id)
        self._state.forget_port_status(port_id)

    def rewired(self, port_id: str) -> None:
        """The port's VIF is (to be) plugged, unplugged or re-attached, or the port goes:
        Neutron may change its status, so its next container's join reads it again."""
        self._settled.discard(port_id)
        self._ahead.pop(port_id, None)

    def plugged_ahead(self, port_id: str) -> None:
        """A free pool port's VIF is plugged (or found whole) ahead of any container: its
        status is read along with the next read, so its first join need not read it."""
        if port_id not in self._settled:
            self._ahead[port_id] = _Ahead()

    # --- the loop ------------------------------------------------------------------------------

    def start(self, first_sweep: float = 5.0) -> None:
        if self._task is None:
            self._next_sweep = time.monotonic() + first_sweep
            self._task = background(self._run(), "kuryr-port-status")

    async def stop(self) -> None:
        if self._task is not None:
            await stopped(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except (KuryrError, NeutronError) as exc:
                LOG.warning("port status check failed, will retry: %s", exc)
            except Exception:
                LOG.exception("port status check failed, will retry")
            self._wake.clear()
            wait = POLL if self._watched else max(self._next_sweep - time.monotonic(), POLL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            if self._watched:
                # Joined ports are checked together, not one GET per start of a burst.
                await asyncio.sleep(POLL)

    async def check(self) -> None:
        """One round: the ports being watched, and every endpoint's port when a sweep is due;
        ports plugged ahead ride along."""
        now = time.monotonic()
        endpoint_ports = self._endpoint_ports()
        for port_id in [p for p in self._watched if p not in endpoint_ports]:
            del self._watched[port_id]
        self._given_up &= endpoint_ports
        ids = set(self._watched)
        sweep = now >= self._next_sweep
        if sweep:
            ids |= endpoint_ports
            self._next_sweep = now + SWEEP
            # Endpoints that went without a DeleteEndpoint (reconciliation reclaimed them).
            for port_id in self._state.port_status_ids() - endpoint_ports:
                self._state.forget_port_status(port_id)
        if not ids and not sweep:
            return
        ahead = {port_id: plug for port_id, plug in self._ahead.items() if port_id not in ids}
        statuses = await self._statuses(sorted(ids | ahead.keys()))
        for port_id in sorted(ids):
            await self._judge(port_id, statuses.get(port_id, GONE), now)
        self._learn_ahead(ahead, statuses)

    def _learn_ahead(self, ahead: dict[str, _Ahead], statuses: dict[str, str]) -> None:
        """Ports plugged ahead seen ACTIVE are settled; a gone one, or one read
        :data:`AHEAD_READS` times not ACTIVE, is no longer read. A port claimed, unplugged or
        plugged again since the read began is left as it is now."""
        for port_id, plug in ahead.items():
            if self._ahead.get(port_id) is not plug:
                continue
            status = statuses.get(port_id, GONE)
            plug.reads += 1
            if status == ACTIVE:
                self._settled.add(port_id)
            if status in (ACTIVE, GONE) or plug.reads >= AHEAD_READS:
                del self._ahead[port_id]

    def _endpoint_ports(self) -> set[str]:
        return {str(port["id"]) for _, port in self._state.endpoints().values()}

    async def _statuses(self, port_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(port_ids), _CHUNK):
            chunk = port_ids[start : start + _CHUNK]
            ports = await self._neutron.query("ports", {"id": chunk, "fields": ["id", "status"]})
            found.update({str(p["id"]): str(p.get("status") or "") for p in ports})
        return found

    async def _judge(self, port_id: str, status: str, now: float) -> None:
        if status != ACTIVE:
            self._settled.discard(port_id)
        if status == GONE:
            self._watched.pop(port_id, None)
            self._given_up.discard(port_id)
            known = self._state.port_status(port_id)
            if known is None or known.status != GONE:
                LOG.warning("port %s of a running container is gone from Neutron", port_id)
            self._state.save_port_status(port_id, GONE, "deleted from Neutron")
            return
        vif = self._vif_of(port_id)
        if vif is None:
            self._watched.pop(port_id, None)
            return
        binder = self._binders.for_vif_type(vif.vif_type)
        problem = await binder.diagnose(vif)
        watched = self._watched.get(port_id)
        if status == ACTIVE and problem is None:
            if watched is not None and watched.warned:
                LOG.info("port %s is ACTIVE again", port_id)
            self._watched.pop(port_id, None)
            self._given_up.discard(port_id)
            self._settled.add(port_id)
            self._state.save_port_status(port_id, ACTIVE)
            return
        self._settled.discard(port_id)
        if port_id in self._given_up:
            self._state.save_port_status(port_id, status, problem or self._lag(vif))
            return
        if watched is None:
            LOG.warning("port %s is %s while its container runs", port_id, status)
            watched = self._watched[port_id] = _Watched(now)
        if problem is not None:
            # Nothing to wait for: the backend cannot report the port up as it is wired.
            self._state.save_port_status(port_id, status, problem)
            await self._repair(port_id, binder, vif, watched, problem)
            return
        late = now - watched.since
        if late < self.bound:
            self._state.save_port_status(port_id, status)
            return
        reason = self._lag(vif)
        self._state.save_port_status(port_id, status, reason)
        if not watched.warned:
            LOG.warning(
                "port %s is %s %.0fs after its container joined (bound %gs): %s",
                port_id,
                status,
                late,
                self.bound,
                reason,
            )
            watched.warned = True
        if late >= WIRED_PATIENCE * self.bound:
            await self._repair(port_id, binder, vif, watched, reason)

    @staticmethod
    def _lag(vif: Vif) -> str:
        return (
            f"the backend has wired {vif.host_ifname} but Neutron has not marked the port "
            "ACTIVE: it has not handled OVN's port-up event yet (its OVN event handling lags "
            "or lost it)"
        )

    async def _repair(
        self, port_id: str, binder: Binder, vif: Vif, watched: _Watched, reason: str
    ) -> None:
        if watched.repairs >= REPAIRS:
            LOG.error(
                "port %s is still not ACTIVE after %d repairs, left as it is: %s",
                port_id,
                REPAIRS,
                reason,
            )
            del self._watched[port_id]
            self._given_up.add(port_id)
            return
        watched.repairs += 1
        watched.warned = True
        self._settled.discard(port_id)
        LOG.warning(
            "port %s: %s; re-attaching %s to the backend (repair %d of %d)",
            port_id,
            reason,
            vif.host_ifname,
            watched.repairs,
            REPAIRS,
        )
        try:
            await binder.rewire(vif, self._plug_timeout)
        except KuryrError as exc:
            LOG.error("port %s: repair failed: %s", port_id, exc)
        watched.since = time.monotonic()
