"""The Neutron interface the domain talks to: the calls it makes, and how they fail.

:class:`kuryr.backends.neutron.Neutron` is the one real client; tests pass an in-memory
fake (``tests/fakes/neutron.py``). Resources are Neutron's own JSON bodies, keyed by the
REST collection name (``ports``, ``security-groups``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kuryr.errors import BackendError

Resource = dict[str, Any]
Params = Mapping[str, str | Sequence[str]]

# The kinds of Neutron failure (BackendError.cause). Only the first three are Neutron's
# own trouble; a 4xx is Neutron refusing what Kuryr sent, which input validation must
# prevent for anything that came from Docker.
CAUSE_UNREACHABLE = "neutron-unreachable"
CAUSE_TIMEOUT = "neutron-timeout"
CAUSE_SERVER_ERROR = "neutron-5xx"
CAUSE_REFUSED = "neutron-4xx"
CAUSE_CLIENT = "neutron-client"


class NeutronError(BackendError):
    """A Neutron request failed. ``http_status`` is 0 when no answer came back; ``cause``
    then says why (unreachable, timeout, client set-up), else it follows from the status."""

    def __init__(
        self, message: str, http_status: int = 0, neutron_type: str = "", cause: str = ""
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.neutron_type = neutron_type
        self.cause = cause or _cause_of(http_status)

    @property
    def not_found(self) -> bool:
        return self.http_status == 404

    @property
    def conflict(self) -> bool:
        return self.http_status == 409

    @property
    def stale(self) -> bool:
        """A conditional write refused: the resource changed since the revision given."""
        return self.http_status == 412


def _cause_of(http_status: int) -> str:
    if http_status >= 500:
        return CAUSE_SERVER_ERROR
    if http_status >= 400:
        return CAUSE_REFUSED
    return CAUSE_CLIENT


class NeutronApi(Protocol):
    """Every Neutron call the domain and the operator side make. Each fails as
    :class:`NeutronError`."""

    async def query(self, resource: str, params: Params | None = None) -> list[Resource]:
        """``GET /<resource>`` with Neutron's filters (``tags``, ``device_id``, ``fixed_ips``,
        ``fields``, ...)."""
        ...

    async def show(self, resource: str, resource_id: str) -> Resource | None:
        """The resource, or None when Neutron has no such id."""
        ...

    async def create(self, resource: str, attrs: Mapping[str, Any]) -> Resource: ...

    async def create_bulk(
        self, resource: str, items: Sequence[Mapping[str, Any]], timeout: float | None = None
    ) -> list[Resource]:
        """One POST creating all ``items``; Neutron makes them all or none. ``timeout``
        replaces the per-call bound (a bulk create costs one create per item)."""
        ...

    async def update(
        self,
        resource: str,
        resource_id: str,
        attrs: Mapping[str, Any],
        revision: int | None = None,
    ) -> Resource:
        """``revision``: only if the resource is still at that revision_number, else
        NeutronError with ``stale`` (a decision taken on an older read is not applied)."""
        ...

    async def delete(self, resource: str, resource_id: str, revision: int | None = None) -> bool:
        """Delete; False (not an error) when it was already gone. ``revision`` as in
        :meth:`update`."""
        ...

    async def set_tags(self, resource: str, resource_id: str, tags: Sequence[str]) -> list[str]:
        """Replace all tags in one call (tags in POST bodies are ignored by Neutron)."""
        ...

    async def add_router_interface(self, router_id: str, subnet_id: str) -> Resource:
        """``PUT /routers/<id>/add_router_interface`` with the subnet: the router takes the
        subnet's gateway address on a port of its own. Answers ``port_id`` and ``subnet_id``."""
        ...

    async def remove_router_interface(self, router_id: str, subnet_id: str) -> bool:
        """The router leaves the subnet (its interface port goes); False (not an error) when
        the router or its interface on that subnet was already gone."""
        ...

    async def port_forwardings(self, floating_ip_id: str) -> list[Resource]:
        """``GET /floatingips/<id>/port_forwardings``: the floating IP's port forwardings;
        NeutronError with ``not_found`` when the floating IP is gone."""
        ...

    async def add_port_forwarding(self, floating_ip_id: str, attrs: Mapping[str, Any]) -> Resource:
        """``POST /floatingips/<id>/port_forwardings`` (``protocol``, ``internal_port_id``,
        ``internal_ip_address``, ``internal_port``, ``external_port``, ``description``). Neutron
        refuses an external port and protocol the floating IP already forwards (400)."""
        ...

    async def delete_port_forwarding(self, floating_ip_id: str, forwarding_id: str) -> bool:
        """Delete one; False (not an error) when it, or its floating IP, was already gone."""
        ...

    async def add_subports(self, trunk_id: str, subports: Sequence[Mapping[str, Any]]) -> Resource:
        """``PUT /trunks/<id>/add_subports``: each subport a ``port_id`` with its
        ``segmentation_type`` and ``segmentation_id``. Answers the trunk. Neutron refuses a
        segmentation id the trunk already carries (409 ``DuplicateSubPort``), a port already
        in a trunk (409 ``TrunkPortInUse``) and a port with a ``device_id`` (409
        ``PortInUse``)."""
        ...

    async def remove_subports(self, trunk_id: str, port_ids: Sequence[str]) -> Resource:
        """``PUT /trunks/<id>/remove_subports``; answers the trunk. NeutronError with
        ``not_found`` when a port is not a subport of the trunk (``SubPortNotFound``) or the
        trunk is gone."""
        ...
