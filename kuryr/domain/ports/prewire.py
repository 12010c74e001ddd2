"""VIFs plugged ahead of their containers and kept from one container to the next.

A free pool port gets its veth and its backend attachment as soon as it enters its pool, so
the backend has wired it (for OVN: ``ovn-installed``) before any container asks: Join then
only checks that the VIF is still whole and answers. When the container stops, Docker moves
the container end back out of the sandbox; a port that goes back to its pool keeps its VIF,
checked whole again (``Binder.ready``), so the backend sees no unplug and no plug at all
(for OVN: no release and claim of the port, no port status flapping in Neutron). A port that
leaves the pools loses its VIF in the background, once Neutron has deleted the port when its
delete is journaled: the other order makes OVN report the port down first, and Neutron's
handling of that report (a status write and an OVN update, ~2 s each under load, one after
the other for the whole host) delays every other port's status, a new container's included.
Work on one port runs in order, at most
``width`` plugs ahead at once per binder (fewer where the binder says so:
``Binder.plugs_ahead_at_once``) so a pool refill does not crowd the backend while containers
start.

Nothing here is durable: after a restart the pools offer their free ports again, and a VIF
still whole from before is taken as it is; leftovers of a crash are reconciliation's
(kuryr.ops.reconcile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from kuryr import deadline
from kuryr.backends.binding.base import Binder, Vif
from kuryr.domain.ports.journal import background
from kuryr.domain.ports.port import Port
from kuryr.errors import BackendError, KuryrError

LOG = logging.getLogger(__name__)

# Plugs ahead running at once: enough to keep up with a refill batch.
_WIDTH = 4
# Shutdown waits this long for unplugs under way.
_CLOSE_GRACE = 5.0
# An unplug waits at most this long for its port's journaled delete (Neutron may be down).
_DELETE_WAIT = 60.0


class Binders(Protocol):
    def for_vif_type(self, vif_type: str) -> Binder: ...


class Prewire:
    def __init__(
        self,
        binders: Binders,
        mtu_of: Callable[[str], int | None],
        ready_timeout: float,
        deleted: Callable[[str], Awaitable[None]],
        width: int = _WIDTH,
    ) -> None:
        """``mtu_of``: the MTU of a Neutron network known locally (None when unknown);
        ``deleted(port_id)``: returns once no journaled delete of the port is pending
        (kuryr.domain.ports.journal.Journal.deleted)."""
        self._binders = binders
        self._mtu_of = mtu_of
        self._deleted = deleted
        self._timeout = ready_timeout
        self._width = width
        self._slots: dict[Binder, asyncio.Semaphore] = {}  # plugs ahead under way, per binder
        self._last: dict[str, asyncio.Task[None]] = {}  # port id -> its latest work
        self._ahead: dict[str, Vif] = {}  # port id -> VIF plugged (or being plugged) ahead
        self._started: set[str] = set()  # plugs ahead past the queue
        self._unplugging: dict[str, str] = {}  # port id -> its network's, until its unplug ends
        self._closed = False
        # Told of every port whose VIF is (to be) plugged or unplugged, or that goes: what
        # was known of its status in Neutron may change (kuryr.domain.ports.status).
        self.rewired: Callable[[str], None] = lambda _port_id: None
        # Told of every free port whose VIF is whole ahead of its container.
        self.plugged: Callable[[str], None] = lambda _port_id: None

    # --- pool side -------------------------------------------------------------------------

    def takes(self, port: Port) -> bool:
        """This host can plug the port: Neutron has bound it, or the binder plugs ports
        whatever their binding (``Binder.plugs_unbound``: nested mode)."""
        if port.bound:
            return True
        try:
            return self._binders.for_vif_type(port.vif_type or "ovs").plugs_unbound
        except KuryrError:
            return False

    def ahead(self, port: Port) -> None:
        """Plug a free pool port in the background (a VIF still whole is kept)."""
        mtu = self._mtu_of(port.network_id)
        if mtu is None or not self.takes(port):
            return
        vif = port.vif("", mtu)
        self._forget(vif.port_id)
        self._ahead[vif.port_id] = vif
        self._chain(vif.port_id, "plug", lambda: self._plug_ahead(vif))

    async def whole(self, port: Port) -> bool:
        """The free port's VIF is whole and wired already (kept from before a restart)."""
        mtu = self._mtu_of(port.network_id)
        if mtu is None or not self.takes(port):
            return False
        vif = port.vif("", mtu)
        try:
            return await self._binders.for_vif_type(vif.vif_type).ready(vif)
        except KuryrError as exc:
            LOG.warning("port %s: cannot check its VIF: %s", vif.port_id, exc)
            return False

    def gone(self, port_id: str, network_id: str = "") -> None:
        """The port is being deleted: its VIF plugged ahead goes (in the background). In
        nested mode a port this daemon did not plug ahead may still be plugged (by the
        daemon before a restart, or taken when it was killed): its VIF is removed by the
        port id the binder names it by (``Binder.plugged``), or a subport's journaled delete
        is refused for good (409 PortInUseAsSubPort) and a macvlan's pair stays on the VM's
        port (both seen live after SIGKILL rounds). ``network_id``: the removal of that
        network waits for it (:meth:`unplugged`)."""
        vif = self._forget(port_id)
        if vif is not None:
            self._unplug_later(vif)
            return
        if self._nested() is not None:
            if network_id:
                self._unplugging[port_id] = network_id
            self._chain(port_id, "unplug", lambda: self.unplug_by_id(port_id))

    async def unplug_by_id(self, port_id: str) -> None:
        """In nested mode, the port's VIF, known by its port only, goes."""
        binder = self._nested()
        if binder is None:
            return
        name = (await binder.plugged()).get(port_id)
        if name is not None:
            await binder.remove(name)

    def _nested(self) -> Binder | None:
        """The binder of nested mode (it plugs whatever Neutron's binding says); None on a
        host, where reconciliation removes the VIFs of gone ports."""
        try:
            binder = self._binders.for_vif_type("ovs")  # nested mode: its one binder
        except KuryrError:
            return None
        return binder if binder.plugs_unbound else None

    async def unplugged(self, network_id: str) -> None:
        """Returns once the unplugs under way of the network's ports (after their delete) are
        over, within the plug timeout: a network's removal then leaves no VIF of its ports
        (for macvlan: no pair on the VM's port). A failed unplug is logged by its task;
        reconciliation removes what is left."""
        tasks = [
            task
            for port_id, net in self._unplugging.items()
            if net == network_id and (task := self._last.get(port_id)) is not None
        ]
        left = deadline.remaining()
        timeout = self._timeout if left is None else min(self._timeout, left)
        if tasks and timeout > 0:
            await asyncio.wait(tasks, timeout=timeout)

    # --- endpoint side -----------------------------------------------------------------------

    async def claim(self, vif: Vif) -> bool:
        """Join: True when the port's VIF, plugged ahead or kept from its last container, is
        whole and wired the way ``vif`` needs; the caller plugs it otherwise. Either way no
        work on the port is under way when this returns (a plug ahead still queued is
        dropped, not awaited: a VIF already whole is taken as it is)."""
        port_id = vif.port_id
        task = self._last.get(port_id)
        if task is not None and port_id in self._ahead and port_id not in self._started:
            task.cancel()
        await self._settle(port_id)
        ahead = self._forget(port_id)
        whole = ahead is not None and ahead.same_wiring(vif)
        if whole:
            whole = await self._binders.for_vif_type(vif.vif_type).ready(vif)
        if not whole:
            self.rewired(port_id)  # the caller plugs it
        return whole

    async def unwire(self, port_id: str) -> None:
        """Before a port's MAC or addresses change: its VIF plugged ahead goes now, so the
        plug that follows starts from no interface, as for a port never pooled."""
        self.gone(port_id)
        await self._settle(port_id)

    async def unplug_stale(self, vif: Vif) -> None:
        """A VIF another plugin left plugged (kuryr-libnetwork's failed start) goes now, before
        its port is taken over."""
        self.rewired(vif.port_id)
        await self._binders.for_vif_type(vif.vif_type).unplug(vif)

    async def unplug_for_delete(self, vif: Vif) -> bool:
        """A port deleted now whose backend refuses the delete while it is plugged
        (``Binder.unplug_before_delete``, a trunk's subport) loses its VIF first: True when
        it did, False (nothing done) for any other backend."""
        binder = self._binders.for_vif_type(vif.vif_type)
        if not binder.unplug_before_delete:
            return False
        self.rewired(vif.port_id)
        self._forget(vif.port_id)
        await self._settle(vif.port_id)
        await binder.unplug(vif)
        return True

    def released(self, vif: Vif) -> None:
        """DeleteEndpoint, once the port is released: a port back in its pool is being
        plugged ahead already (its VIF kept when still whole); any other loses its VIF in
        the background. Called by the broker (kuryr.domain.ports.broker) in the same
        synchronous step as the port's release, so no start can have claimed the port in
        between."""
        if vif.port_id not in self._ahead:
            self._unplug_later(vif)

    async def close(self) -> None:
        """Stop plugging ahead: plugs still queued are dropped, and plugs and unplugs under
        way get a moment to finish. A plug cancelled half-way is undone, so the restart that
        follows would plug the port again instead of keeping its VIF (seen in CI: a VIF
        OVN had wired, removed by a stop that came before the plug had returned)."""
        self._closed = True
        tasks = list(self._last.values())
        for task in tasks:
            kind, _, port_id = task.get_name().partition("-")
            if kind == "plug" and port_id not in self._started:
                task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_GRACE)

    # --- the work ------------------------------------------------------------------------------

    def _unplug_later(self, vif: Vif) -> None:
        self.rewired(vif.port_id)
        self._unplugging[vif.port_id] = vif.network_id
        self._chain(vif.port_id, "unplug", lambda: self._unplug(vif))

    def _forget(self, port_id: str) -> Vif | None:
        self._started.discard(port_id)
        return self._ahead.pop(port_id, None)

    def _chain(
        self, port_id: str, kind: str, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        if self._closed:
            return
        before = self._last.get(port_id)
        task = background(self._after(before, kind, port_id, work), f"{kind}-{port_id}")
        self._last[port_id] = task
        task.add_done_callback(lambda t: self._done(port_id, t))

    async def _after(
        self,
        before: asyncio.Task[None] | None,
        kind: str,
        port_id: str,
        work: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        if before is not None:
            try:
                await asyncio.wait([before])
            except asyncio.CancelledError:
                # Dropped while queued: what came before on the port still ends first.
                await asyncio.wait([before])
                raise
        try:
            await work()
        except KuryrError as exc:
            # Join plugs what was not plugged ahead; reconciliation removes what is left.
            LOG.warning("%s of port %s failed: %s", kind, port_id, exc)
        except Exception:
            LOG.exception("%s of port %s failed", kind, port_id)

    def _done(self, port_id: str, task: asyncio.Task[None]) -> None:
        if self._last.get(port_id) is task:
            del self._last[port_id]
            self._unplugging.pop(port_id, None)

    async def _settle(self, port_id: str) -> None:
        task = self._last.get(port_id)
        if task is None or task.done():
            return
        timeout = deadline.clamp(self._timeout, f"plugging port {port_id} ahead")
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            raise BackendError(
                f"port {port_id} is still being plugged or unplugged after {timeout:g}s "
                "(is the backend, e.g. ovn-controller, overloaded?)"
            )

    async def _plug_ahead(self, vif: Vif) -> None:
        binder = self._binders.for_vif_type(vif.vif_type)
        async with self._slots_of(binder):
            if self._ahead.get(vif.port_id) is not vif:
                return  # claimed or gone while queued
            self._started.add(vif.port_id)
            if not await binder.ready(vif):
                self.rewired(vif.port_id)
                await binder.plug(vif, self._timeout)
            self.plugged(vif.port_id)

    def _slots_of(self, binder: Binder) -> asyncio.Semaphore:
        slots = self._slots.get(binder)
        if slots is None:
            width = min(self._width, binder.plugs_ahead_at_once or self._width)
            slots = self._slots[binder] = asyncio.Semaphore(width)
        return slots

    async def _unplug(self, vif: Vif) -> None:
        binder = self._binders.for_vif_type(vif.vif_type)
        if binder.unplug_before_delete:
            # The journaled delete is refused until the VIF is gone: no wait for it.
            await binder.unplug(vif)
            return
        try:
            await asyncio.wait_for(self._deleted(vif.port_id), _DELETE_WAIT)
        except TimeoutError:
            LOG.warning(
                "port %s: its delete is not in Neutron after %gs; unplugging its VIF first",
                vif.port_id,
                _DELETE_WAIT,
            )
        await binder.unplug(vif)
