"""The local Open_vSwitch database through ovsdbapp: one shared connection for the process.

ovsdbapp is synchronous and runs its own connection thread, which applies every update and
commits every transaction. Callers here are coroutines: blocking calls run on a dedicated
thread pool (wide enough that concurrent plugs never queue behind each other for a thread),
and row events reach the event loop through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ovs.db import idl as ovs_idl
from ovsdbapp.backend.ovs_idl import connection, idlutils, transaction
from ovsdbapp.backend.ovs_idl.event import RowEvent, RowEventHandler
from ovsdbapp.schema.open_vswitch import impl_idl

from kuryr import deadline
from kuryr.errors import BackendError

T = TypeVar("T")

# Only the columns Kuryr reads or writes: Interface statistics change every few seconds on
# every port, and monitoring them would wake the connection thread for nothing.
_COLUMNS: dict[str, list[str]] = {
    "Open_vSwitch": ["bridges", "external_ids"],
    "Bridge": ["name", "ports"],
    "Port": ["name", "interfaces", "tag"],  # tag: nested vlan_ovs access ports
    "Interface": ["name", "type", "external_ids", "error", "ofport"],
}
_MAX_THREADS = 64
# ovsdbapp's own commit timeout is the connection's (10 s); a request's deadline may cut it.
TRANSACTION_TIMEOUT = 10.0


@dataclass(frozen=True)
class InterfaceState:
    """A snapshot of one Interface row."""

    name: str
    external_ids: Mapping[str, str]
    error: str


class _EventIdl(connection.OvsdbIdl):
    """An Idl that hands every row change to a RowEventHandler."""

    def __init__(self, remote: str, helper: Any, handler: RowEventHandler) -> None:
        super().__init__(remote, helper)
        self._handler = handler

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        self._handler.notify(event, row, updates)


class _NoWaitTransaction(transaction.Transaction):
    """Commit without waiting for ovs-vswitchd to reconfigure (ovs-vsctl --no-wait).

    Readiness comes from ``ovn-installed``, which ovn-controller only sets once vswitchd has
    the port; waiting here would also hold the single connection thread that every other
    transaction and every event needs.
    """

    def pre_commit(self, txn: Any) -> None:
        # AddPortCommand records the interfaces it inserts here.
        txn.expected_ifaces = set()


class OvsApi(impl_idl.OvsdbIdl):
    """ovsdbapp's Open_vSwitch API bound to one connection.

    ovsdbapp keeps the connection on the class; keeping it on the instance lets a process
    (or a test run) open, close and reopen connections.
    """

    def __init__(self, conn: connection.Connection) -> None:
        self._conn = conn
        super().__init__(conn, start=False)

    @property
    def ovsdb_connection(self) -> connection.Connection:
        return self._conn

    @ovsdb_connection.setter
    def ovsdb_connection(self, conn: connection.Connection) -> None:
        self._conn = conn

    def create_transaction(
        self, check_error: bool = False, log_errors: bool = True, **kwargs: Any
    ) -> _NoWaitTransaction:
        return _NoWaitTransaction(self, self._conn, check_error=True, log_errors=False)


class _InterfaceEvent(RowEvent):
    """Fires once when Interface ``name`` is created or updated into a state ``wanted``."""

    ONETIME = True

    def __init__(
        self,
        name: str,
        wanted: Callable[[InterfaceState], bool],
        deliver: Callable[[InterfaceState], None],
    ) -> None:
        super().__init__((self.ROW_CREATE, self.ROW_UPDATE), "Interface", (("name", "=", name),))
        self._wanted = wanted
        self._deliver = deliver

    # ovsdbapp keeps watched events in a set and compares them by table and conditions;
    # two plugs of the same interface name must still get an event each.
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def match_fn(self, event: str, row: Any, old: Any) -> bool:
        return self._wanted(_state(row))

    def run(self, event: str, row: Any, old: Any) -> None:
        self._deliver(_state(row))


class InterfaceWatch:
    """An awaitable wait for an Interface to reach a state; ``cancel`` when done with it."""

    def __init__(self, ovsdb: Ovsdb, name: str, wanted: Callable[[InterfaceState], bool]) -> None:
        self._loop = asyncio.get_running_loop()
        self._wanted = wanted
        self._handler = ovsdb.handler
        self.future: asyncio.Future[InterfaceState] = self._loop.create_future()
        self._event = _InterfaceEvent(name, wanted, self._deliver_threadsafe)
        self._handler.watch_event(self._event)

    def _deliver_threadsafe(self, state: InterfaceState) -> None:
        self._loop.call_soon_threadsafe(self._settle, state)

    def _settle(self, state: InterfaceState) -> None:
        if not self.future.done():
            self.future.set_result(state)

    def offer(self, state: InterfaceState | None) -> None:
        """Settle from a state read directly (the row may have been ready before the watch)."""
        if state is not None and self._wanted(state):
            self._settle(state)

    def cancel(self) -> None:
        self._handler.unwatch_event(self._event)
        self.future.cancel()


class Ovsdb:
    """One connection to the local Open_vSwitch database."""

    def __init__(
        self,
        api: OvsApi,
        handler: RowEventHandler,
        executor: ThreadPoolExecutor,
        remote: str,
    ) -> None:
        self.api = api
        self.handler = handler
        self.remote = remote
        self._executor = executor

    @classmethod
    async def connect(cls, remote: str, timeout: float = 10.0) -> Ovsdb:
        """Connect to ``remote`` (``unix:/path`` or ``tcp:host:port``) and load the tables."""
        if remote.startswith("unix:") and not os.path.exists(remote[len("unix:") :]):
            raise BackendError(f"OVSDB {remote} is not running (no socket)")
        executor = ThreadPoolExecutor(_MAX_THREADS, thread_name_prefix="ovsdb")
        loop = asyncio.get_running_loop()
        try:
            api, handler = await asyncio.wait_for(
                loop.run_in_executor(executor, _open, remote, timeout), timeout
            )
        except Exception as e:
            executor.shutdown(wait=False)
            raise BackendError(f"cannot connect to OVSDB {remote}: {e}") from e
        return cls(api, handler, executor, remote)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ovsdbapp call off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def transact(self, commands: Callable[[OvsApi], Sequence[Any]]) -> None:
        """Commit the commands ``commands(api)`` builds, all in one transaction."""

        def commit() -> None:
            txn = self.api.create_transaction()
            for command in commands(self.api):
                txn.add(command)
            txn.commit()

        timeout = deadline.clamp(TRANSACTION_TIMEOUT, "OVSDB transaction")
        try:
            await asyncio.wait_for(self.run(commit), timeout)
        except TimeoutError:
            raise BackendError(
                f"OVSDB {self.remote} did not commit a transaction within {timeout:.3g}s "
                "(is ovsdb-server running?)"
            ) from None
        except BackendError:
            raise
        except Exception as e:
            raise BackendError(f"OVSDB transaction failed: {e}") from e

    def _read(self, fn: Callable[[], T]) -> T:
        with self.api.ovsdb_connection.lock:
            return fn()

    async def hostname(self) -> str:
        """The chassis name OVN uses: Open_vSwitch ``external_ids:hostname``."""

        def read() -> str:
            rows = list(self.api.tables["Open_vSwitch"].rows.values())
            return str(rows[0].external_ids.get("hostname", "")) if rows else ""

        return await self.run(self._read, read)

    async def interface(self, name: str) -> InterfaceState | None:
        def read() -> InterfaceState | None:
            row = idlutils.row_by_value(self.api.idl, "Interface", "name", name, None)
            return None if row is None else _state(row)

        return await self.run(self._read, read)

    async def interfaces(self) -> list[InterfaceState]:
        def read() -> list[InterfaceState]:
            return [_state(row) for row in self.api.tables["Interface"].rows.values()]

        return await self.run(self._read, read)

    def watch_interface(
        self, name: str, wanted: Callable[[InterfaceState], bool]
    ) -> InterfaceWatch:
        """Start watching now, so no change after this call can be missed."""
        return InterfaceWatch(self, name, wanted)

    async def close(self) -> None:
        conn = self.api.ovsdb_connection
        await self.run(conn.stop, 5)
        self.handler.shutdown()
        self._executor.shutdown(wait=False)


def _open(remote: str, timeout: float) -> tuple[OvsApi, RowEventHandler]:
    helper = idlutils.get_schema_helper(remote, "Open_vSwitch")
    for table, columns in _COLUMNS.items():
        helper.register_columns(table, columns)
    handler = RowEventHandler()
    conn = connection.Connection(_EventIdl(remote, helper, handler), timeout)
    api = OvsApi(conn)
    try:
        conn.start()
    except Exception:
        handler.shutdown()
        raise
    return api, handler


def _state(row: ovs_idl.Row | Any) -> InterfaceState:
    error = row.error
    # Optional columns read as a list ([] or [value]) from the Idl.
    if isinstance(error, list):
        error = error[0] if error else ""
    return InterfaceState(
        name=str(row.name), external_ids=dict(row.external_ids), error=str(error or "")
    )
