"""Bookkeeping owed to Neutron, journaled locally before Docker gets its answer.

What a port must end up holding (``device_id``, ``name``, ``tags``; or that it is deleted) is
recorded in the local state first; a background worker then makes Neutron match. One entry per
port: a newer record replaces an older one not yet applied, so a container that starts and
stops before the worker gets to it costs Neutron nothing. Entries left by a crash are applied
when the next daemon starts the worker. The worker never touches a port twice at once.

A ``view`` per port remembers what Neutron is believed to hold, so only the calls that change
something are made (a PUT of device_id/name, a PUT of the tags). With a :class:`Quiet`, due
entries wait for a pause in Docker's requests (kuryr.domain.quiet), so a burst of starts is not
slowed by the Neutron and OVN work its bookkeeping causes. Entries giving a port to an endpoint
have worker slots of their own, so they never queue behind deletes and cleanings; deletes have
theirs too, more of them (a network removal deletes its pool ports side by side, never one at
a time, and never behind cleanings); a Docker request waiting for its port's bookkeeping
(``[pool] bookkeeping = immediate``) takes none.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from kuryr.backends.neutron_api import NeutronApi, NeutronError
from kuryr.backends.state import JournalEntry, State
from kuryr.domain.ports.desired import DELETE, UPDATE, view_of
from kuryr.domain.ports.port import Port
from kuryr.domain.quiet import Quiet, giving_way
from kuryr.errors import BackendError

LOG = logging.getLogger(__name__)

_RETRY_SECONDS = 2.0
# Neutron's refusal to delete a trunk's subport.
IN_USE_AS_SUBPORT = "PortInUseAsSubPort"
# Port deletes in flight at once. A delete costs Neutron ~0.3-1 s under load and holds no lock
# other deletes wait for, so a removed network's pool ports go side by side; bounded, so a
# drain of many pools does not flood neutron-server's workers.
DELETE_WORKERS = 16
_RECANCEL_SECONDS = 0.05


def background(
    work: Coroutine[Any, Any, None], name: str, context: contextvars.Context | None = None
) -> asyncio.Task[None]:
    """A task outside any request: a fresh context (or ``context``, which must be fresh), so
    no Docker request's deadline (kuryr.deadline) bounds work that outlives the request."""
    return asyncio.create_task(work, name=name, context=context or contextvars.Context())


async def stopped(task: asyncio.Task[None]) -> None:
    """Cancel a background loop and wait until it has ended. Cancelled again as long as it
    runs: on Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives once its
    inner wait is over (e.g. a loop's wake-up event set just before shutdown, with no await
    in between), and the loop would go on forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=_RECANCEL_SECONDS)
    await asyncio.gather(task, return_exceptions=True)


def _for_endpoint(entry: JournalEntry) -> bool:
    """The entry gives a port to an endpoint (rather than deleting or cleaning it)."""
    return entry.desired["op"] == UPDATE and bool(entry.desired.get("device_id"))


class Journal:
    """Durable, coalescing queue of bookkeeping writes, applied in the background."""

    def __init__(
        self,
        state: State,
        neutron: NeutronApi,
        delay: float = 0.0,
        workers: int = 4,
        *,
        quiet: Quiet,
        delete_workers: int = DELETE_WORKERS,
    ) -> None:
        self.state = state
        self._neutron = neutron
        # Set by the daemon (kuryr.driver): a subport's VIF goes before its delete is retried.
        self.unplug_first: Callable[[str], Awaitable[None]] | None = None
        self._delay = delay
        self._quiet = quiet
        self._slots = asyncio.Semaphore(workers)
        # A lane of its own for what a container's port owes Neutron (its device_id, name and
        # tags), the part of the bookkeeping users read: it never waits behind deletes and
        # cleanings, however many a network removal or a pool drain queued.
        self._endpoint_slots = asyncio.Semaphore(workers)
        self._delete_slots = asyncio.Semaphore(delete_workers)
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._busy: dict[str, asyncio.Task[None]] = {}  # port id -> apply in flight
        # Ports a Docker request waits for (kuryr.domain.endpoints, immediate bookkeeping): applied
        # without queueing for a worker slot behind background work such as the deletes of a
        # removed network's pool ports.
        self._urgent: set[str] = set()
        # Set (and replaced) whenever ports become urgent: wakes applies waiting for a slot.
        self._urgent_added = asyncio.Event()
        self._retry_at: dict[str, float] = {}
        self._worker: asyncio.Task[None] | None = None
        self._stopped = False

    # --- recording (synchronous: durable before the caller answers Docker) ----------------------

    def record(self, port: Port, desired: dict[str, Any]) -> None:
        port_id = port.id
        if self.state.view(port_id) is None:
            self.state.save_view(port_id, view_of(port))
        self.state.journal_put(port_id, desired)
        self._retry_at.pop(port_id, None)
        self._kick()

    def record_delete(self, port_id: str) -> None:
        self.state.journal_put(port_id, {"op": DELETE})
        self._retry_at.pop(port_id, None)
        self._kick()

    def pending(self, port_ids: Iterable[str] | None = None) -> list[JournalEntry]:
        entries = self.state.journal()
        if port_ids is None:
            return entries
        wanted = set(port_ids)
        return [e for e in entries if e.port_id in wanted]

    # --- the worker -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start applying (entries left by a previous run included)."""
        if self._worker is None and not self._stopped:
            self._worker = background(self._run(), "kuryr-journal")

    def _kick(self) -> None:
        self.start()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = self._dispatch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _dispatch(self) -> float | None:
        """Start applying every due entry; returns how long until the next one is due."""
        now = time.time()
        next_due: float | None = None
        for entry in self.state.journal():
            if entry.port_id in self._busy:
                continue
            due = max(entry.at + self._delay, self._retry_at.get(entry.port_id, 0.0))
            due = self._quiet.due(due)
            if due > now:
                next_due = min(next_due or due, due)
                continue
            task = background(self._apply_one(entry), f"journal-{entry.port_id}")
            self._busy[entry.port_id] = task
        return None if next_due is None else max(next_due - now, 0.01)

    async def _apply_one(self, entry: JournalEntry) -> None:
        try:
            slots = self._lane(entry)
            slot = await self._take_slot(slots, entry.port_id)
            try:
                await self._apply(entry)
            finally:
                if slot:
                    slots.release()
            if not self.state.journal_done(entry.port_id, entry.seq):
                LOG.debug("port %s: newer bookkeeping recorded meanwhile", entry.port_id)
        except NeutronError as exc:
            LOG.warning("bookkeeping of port %s failed, will retry: %s", entry.port_id, exc)
            self._retry_at[entry.port_id] = time.time() + _RETRY_SECONDS
        except Exception:
            LOG.exception("bookkeeping of port %s failed, will retry", entry.port_id)
            self._retry_at[entry.port_id] = time.time() + _RETRY_SECONDS
        finally:
            self._busy.pop(entry.port_id, None)
            self._wake.set()
            async with self._changed:
                self._changed.notify_all()

    def _lane(self, entry: JournalEntry) -> asyncio.Semaphore:
        if _for_endpoint(entry):
            return self._endpoint_slots
        return self._delete_slots if entry.desired["op"] == DELETE else self._slots

    async def _take_slot(self, slots: asyncio.Semaphore, port_id: str) -> bool:
        """Wait for one of ``slots`` (True), or return False without one as soon as a Docker
        request waits for the port: an apply queued before its port became urgent (e.g. the
        cleaning of a pool port a new container has since taken) must not hold it up."""
        acquire = asyncio.ensure_future(slots.acquire())
        try:
            while port_id not in self._urgent:
                woken = asyncio.ensure_future(self._urgent_added.wait())
                done, _ = await asyncio.wait({acquire, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if acquire in done:
                    return True
        finally:
            if not acquire.done():
                acquire.cancel()
        # Urgent, but the slot may have come at the same moment: give it back.
        if acquire.done() and not acquire.cancelled():
            slots.release()
        return False

    async def _apply(self, entry: JournalEntry) -> None:
        port_id, desired = entry.port_id, entry.desired
        if desired["op"] == DELETE:
            try:
                await self._neutron.delete("ports", port_id)
            except NeutronError as exc:
                if exc.neutron_type != IN_USE_AS_SUBPORT or self.unplug_first is None:
                    raise
                # Still a subport (a delete journaled before a kill, replayed after it, with
                # no VIF of this daemon's to unplug first): it leaves the trunk, then goes.
                await self.unplug_first(port_id)
                await self._neutron.delete("ports", port_id)
            self.state.forget_view(port_id)
            return
        view = self.state.view(port_id) or {}
        try:
            fields = {k: desired[k] for k in ("device_id", "name") if view.get(k) != desired[k]}
            if fields:
                self._unsure(port_id, view, fields)
                await self._neutron.update("ports", port_id, fields)
                view.update(fields)
                self.state.save_view(port_id, view)
            if view.get("tags") is None or sorted(view["tags"]) != desired["tags"]:
                self._unsure(port_id, view, ["tags"])
                view["tags"] = sorted(
                    await self._neutron.set_tags("ports", port_id, desired["tags"])
                )
                self.state.save_view(port_id, view)
        except NeutronError as exc:
            if not exc.not_found:
                raise
            LOG.info("port %s is gone; its bookkeeping is dropped", port_id)
            self.state.forget_view(port_id)

    def _unsure(self, port_id: str, view: dict[str, Any], fields: Iterable[str]) -> None:
        """Forget what Neutron holds in ``fields`` until the write in flight is answered: a
        write that timed out, or whose daemon was killed, may still have landed, and a view
        that kept the old value would skip the next write that puts it back."""
        unsure = dict(view)
        for key in fields:
            unsure[key] = None
        self.state.save_view(port_id, unsure)

    # --- waiting ----------------------------------------------------------------------------------

    async def flush(
        self, port_ids: Iterable[str] | None = None, timeout: float = 30.0, urgent: bool = False
    ) -> None:
        """Apply the entries of ``port_ids`` (all when None) now, not after the delay, and wait
        for them; BackendError when Neutron has not taken them within ``timeout``. ``urgent``
        (a Docker request waits): they take no worker slot, so background work never holds
        them up."""
        ids = None if port_ids is None else set(port_ids)
        if urgent and ids is not None:
            self._urgent |= ids
            self._urgent_added.set()
            self._urgent_added = asyncio.Event()
            try:
                await self._flush(ids, timeout)
            finally:
                self._urgent -= ids
            return
        await self._flush(ids, timeout)

    async def _flush(self, ids: set[str] | None, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._changed:
            while entries := self.pending(ids):
                now = time.time()
                for entry in entries:
                    if (
                        entry.port_id not in self._busy
                        and self._retry_at.get(entry.port_id, 0) <= now
                    ):
                        # A flush for background work that gives way to Docker (a network
                        # removal's pool ports) gives way too.
                        self._busy[entry.port_id] = background(
                            self._apply_one(entry), f"journal-{entry.port_id}", giving_way()
                        )
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise BackendError(
                        f"bookkeeping of {len(entries)} port(s) not applied within {timeout:g}s"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, _RETRY_SECONDS))

    async def deleted(self, port_id: str) -> None:
        """Return once no journaled delete of the port is left (at once when none is
        recorded): NeutronApi has deleted it, or a newer record replaced the delete."""
        async with self._changed:
            while (entry := self.state.journal_entry(port_id)) is not None:
                if entry.desired["op"] != DELETE:
                    return
                await self._changed.wait()

    async def stop(self) -> None:
        """Stop the worker; what is not applied stays journaled for the next start."""
        self._stopped = True
        if self._worker is not None:
            await stopped(self._worker)
            self._worker = None
        busy = list(self._busy.values())
        if busy:
            await asyncio.gather(*busy, return_exceptions=True)
