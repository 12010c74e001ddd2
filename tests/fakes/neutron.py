"""An in-memory Neutron behind :class:`kuryr.backends.neutron_api.NeutronApi`, for domain tests
that run without the stack.

Faithful where the domain relies on Neutron (tests/fakes/neutron_store.py lists what, and
tests/integration/test_neutron_fake.py checks it against the real one): fixed IPs and their
conflicts, MACs, revisions and If-Match, tags, bulk creates made all or none (a failed bulk
port create keeps the addresses of its other ports allocated, as Neutron Zed's IPAM does), the
list filters.
Every call yields to the event loop and is counted in ``calls`` as the real client counts
them; ``faults`` makes calls slow, held, refused or answer-less. Failures are the real
client's :class:`~kuryr.backends.neutron_api.NeutronError`, with Neutron's status and type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kuryr.backends.neutron_api import NeutronError, Params, Resource
from tests.fakes import neutron_forwardings as forwardings
from tests.fakes import neutron_trunks as trunks
from tests.fakes.neutron_faults import Faults
from tests.fakes.neutron_filters import select
from tests.fakes.neutron_ips import Refused
from tests.fakes.neutron_schema import ATTRIBUTES
from tests.fakes.neutron_store import Store

T = TypeVar("T")

STANDARD_ATTR_TAG = "standard-attr-tag"
# The real client counts a floating IP's port forwardings under this name.
FORWARDINGS = "port-forwardings"

# Filterable besides the attributes a caller may set.
_READ_ATTRIBUTES = {
    "id", "project_id", "tenant_id", "status", "revision_number", "created_at", "updated_at",
    "mac_address", "binding:vif_type", "ip_version", "cidr", "router_id",
}  # fmt: skip


class FakeNeutron:
    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        seed: int = 0,
        post_tags: bool = False,
    ) -> None:
        """``clock``: wall-clock seconds stamped on resources (``created_at``,
        ``updated_at``); ``seed`` makes ids, MACs and picked addresses repeatable;
        ``post_tags``: ML2's tag_ports_during_bulk_creation extension driver is on (a port
        POST keeps its tags; without it they are dropped)."""
        if clock is not None:
            self.store = Store(clock, seed, post_tags=post_tags)
        else:
            self.store = Store(seed=seed, post_tags=post_tags)
        self.faults = Faults()
        self.calls: Counter[tuple[str, str]] = Counter()

    # --- kuryr.backends.neutron_api.NeutronApi ---------------------------------------------------

    async def query(self, resource: str, params: Params | None = None) -> list[Resource]:
        def run() -> list[Resource]:
            rows = [self.store.render(resource, r) for r in self._table(resource).values()]
            return select(resource, rows, params, ATTRIBUTES[resource] | _READ_ATTRIBUTES)

        return await self._call("GET", resource, f"/{resource}", run)

    async def show(self, resource: str, resource_id: str) -> Resource | None:
        def run() -> Resource | None:
            row = self._table(resource).get(resource_id)
            return None if row is None else self.store.render(resource, row)

        return await self._call("GET", resource, f"/{resource}/{resource_id}", run)

    async def create(self, resource: str, attrs: Mapping[str, Any]) -> Resource:
        def run() -> Resource:
            return self.store.render(resource, self.store.create(resource, dict(attrs)))

        return await self._call("POST", resource, f"/{resource}", run)

    async def create_bulk(
        self, resource: str, items: Sequence[Mapping[str, Any]], timeout: float | None = None
    ) -> list[Resource]:
        def run() -> list[Resource]:
            before = self.store.snapshot()
            made: list[Resource] = []
            try:
                for item in items:
                    made.append(self.store.create(resource, dict(item)))
            except Refused:
                self.store.tables = before
                if resource == "ports":
                    self.store.leak([f for port in made for f in port["fixed_ips"]])
                raise
            return [self.store.render(resource, row) for row in made]

        return await self._call("POST", resource, f"/{resource}", run)

    async def update(
        self,
        resource: str,
        resource_id: str,
        attrs: Mapping[str, Any],
        revision: int | None = None,
    ) -> Resource:
        def run() -> Resource:
            row = self.store.update(resource, resource_id, dict(attrs), revision)
            return self.store.render(resource, row)

        return await self._call("PUT", resource, f"/{resource}/{resource_id}", run)

    async def delete(self, resource: str, resource_id: str, revision: int | None = None) -> bool:
        def run() -> bool:
            try:
                self.store.delete(resource, resource_id, revision)
            except Refused as refused:
                if refused.status == 404:
                    return False
                raise
            return True

        return await self._call("DELETE", resource, f"/{resource}/{resource_id}", run)

    async def set_tags(self, resource: str, resource_id: str, tags: Sequence[str]) -> list[str]:
        def run() -> list[str]:
            return self.store.set_tags(resource, resource_id, sorted(set(tags)))

        return await self._call("PUT", resource, f"/{resource}/{resource_id}/tags", run)

    async def add_router_interface(self, router_id: str, subnet_id: str) -> Resource:
        def run() -> Resource:
            return self.store.add_router_interface(router_id, subnet_id)

        return await self._call("PUT", "routers", f"/routers/{router_id}/add_router_interface", run)

    async def remove_router_interface(self, router_id: str, subnet_id: str) -> bool:
        def run() -> bool:
            try:
                self.store.remove_router_interface(router_id, subnet_id)
            except Refused as refused:
                if refused.status == 404:
                    return False
                raise
            return True

        path = f"/routers/{router_id}/remove_router_interface"
        return await self._call("PUT", "routers", path, run)

    async def port_forwardings(self, floating_ip_id: str) -> list[Resource]:
        path = f"/floatingips/{floating_ip_id}/port_forwardings"
        return await self._call(
            "GET", FORWARDINGS, path, lambda: forwardings.listed(self.store, floating_ip_id)
        )

    async def add_port_forwarding(self, floating_ip_id: str, attrs: Mapping[str, Any]) -> Resource:
        path = f"/floatingips/{floating_ip_id}/port_forwardings"
        return await self._call(
            "POST",
            FORWARDINGS,
            path,
            lambda: forwardings.add(self.store, floating_ip_id, dict(attrs)),
        )

    async def delete_port_forwarding(self, floating_ip_id: str, forwarding_id: str) -> bool:
        def run() -> bool:
            try:
                forwardings.delete(self.store, floating_ip_id, forwarding_id)
            except Refused as refused:
                if refused.status == 404:
                    return False
                raise
            return True

        path = f"/floatingips/{floating_ip_id}/port_forwardings/{forwarding_id}"
        return await self._call("DELETE", FORWARDINGS, path, run)

    async def add_subports(self, trunk_id: str, subports: Sequence[Mapping[str, Any]]) -> Resource:
        def run() -> Resource:
            before = self.store.snapshot()
            try:
                return trunks.add_subports(
                    self.store.tables, trunk_id, [dict(s) for s in subports], self.store.touch
                )
            except Refused:
                self.store.tables = before
                raise

        return await self._call("PUT", "trunks", f"/trunks/{trunk_id}/add_subports", run)

    async def remove_subports(self, trunk_id: str, port_ids: Sequence[str]) -> Resource:
        def run() -> Resource:
            wanted = [{"port_id": p} for p in port_ids]
            return trunks.remove_subports(self.store.tables, trunk_id, wanted, self.store.touch)

        return await self._call("PUT", "trunks", f"/trunks/{trunk_id}/remove_subports", run)

    # --- what a test sees and does outside Kuryr (no call counted, no fault) ----------------------

    def rows(self, resource: str, filters: Params | None = None) -> list[Resource]:
        """The resources as Neutron holds them now, filtered as a query would."""
        rows = [self.store.render(resource, r) for r in self._table(resource).values()]
        return select(resource, rows, filters, ATTRIBUTES[resource] | _READ_ATTRIBUTES)

    def get(self, resource: str, resource_id: str) -> Resource | None:
        row = self._table(resource).get(resource_id)
        return None if row is None else self.store.render(resource, row)

    def make(self, resource: str, attrs: Mapping[str, Any], tags: Sequence[str] = ()) -> Resource:
        """Create as an operator would, by hand (tags set afterwards, as they must be)."""
        row = self.store.create(resource, dict(attrs))
        if tags:
            self.store.set_tags(resource, row["id"], list(tags))
        return self.store.render(resource, row)

    def change(self, resource: str, resource_id: str, **attrs: Any) -> Resource:
        """A write by someone else (a user, OVN reporting status): the revision moves."""
        row = self.store.get(resource, resource_id)
        row.update(attrs)
        self.store.touch(row)
        return self.store.render(resource, row)

    # --- plumbing ------------------------------------------------------------------------------

    def _table(self, resource: str) -> dict[str, Resource]:
        table = self.store.tables.get(resource)
        if table is None:
            raise NeutronError(f"the fake Neutron has no {resource}", 404, "HTTPNotFound")
        return table

    async def _call(self, method: str, resource: str, path: str, run: Callable[[], T]) -> T:
        self.calls[(method, resource)] += 1
        fault = await self.faults.before(method, resource)
        if fault is not None and not fault.applied:
            raise fault.error(method, resource)
        try:
            answer = run()
        except Refused as refused:
            label = f"{refused.status} {refused.neutron_type}"
            raise NeutronError(
                f"Neutron {method} {path} failed: {label}: {refused.message}",
                refused.status,
                refused.neutron_type,
            ) from None
        if fault is not None:
            raise fault.error(method, resource)
        return answer
