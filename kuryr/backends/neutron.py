"""The one place that talks to Neutron.

openstacksdk builds the authenticated keystoneauth session (noauth + endpoint, a clouds.yaml
entry, or ``OS_*`` variables) and finds the network endpoint; requests are then plain REST
calls on that session. Plain REST keeps every body explicit (``binding:host_id``, bulk
creates, ``PUT .../tags``) and costs one HTTP round trip per call, which is what the
performance budget counts. Each call runs in a worker thread with a bounded timeout (cut to
what the Docker request has left, see :mod:`kuryr.deadline`), is retried with backoff only
when the connection failed in a way that cannot duplicate a write (refused, or dropped
during a GET/PUT/DELETE), is counted, carries the Docker request's id (as
``X-OpenStack-Request-ID``, :mod:`kuryr.request_ids`), and fails as a :class:`NeutronError`
naming the call and the cause. No state is kept about a failed backend: the next call simply
tries again, so the daemon serves again as soon as Neutron is back.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_exc

from kuryr import deadline, request_ids
from kuryr.backends import neutron_auth
from kuryr.backends.neutron_api import (
    CAUSE_CLIENT,
    CAUSE_TIMEOUT,
    CAUSE_UNREACHABLE,
    NeutronError,
    Params,
    Resource,
)
from kuryr.backends.neutron_trunks import TrunkCalls
from kuryr.config import NeutronConfig

LOG = logging.getLogger(__name__)

API_VERSION = "v2.0"
_BACKOFF_SECONDS = 0.2
# The worker thread honours the timeout itself; this only catches a thread that does not.
_THREAD_SLACK = 2.0
# Neutron calls in flight at once, each in a worker thread of the client's own (asyncio's
# default pool has cpu+4 threads: on two cores, six deletes Neutron is slow to answer would
# leave a Docker request's call waiting for a thread). More than the journal's lanes and the
# refills can use together; a keep-alive connection each.
WORKER_THREADS = 48
# A floating IP's port forwardings: a sub-resource, counted under its own name.
_FORWARDINGS = "port-forwardings"
# keystoneauth's ConnectFailure text: "Unable to establish connection to <url>: <urllib3 repr>".
_FAILED_URL = re.compile(r"connection to (\S+?):? ")
_REASON = re.compile(r"\[Errno -?\d+\] [A-Za-z ]+")

# Called around every request with (HTTP method, resource kind); e.g. metrics.neutron_call.
CallHook = Callable[[str, str], AbstractContextManager[None]]


@contextmanager
def _no_hook(_method: str, _resource: str) -> Iterator[None]:
    yield


class Neutron(TrunkCalls):
    """Async Neutron REST client over a keystoneauth session: the real
    :class:`kuryr.backends.neutron_api.NeutronApi`."""

    def __init__(
        self,
        session: Any,
        base_url: str,
        timeout: float = 10.0,
        retries: int = 2,
        call_hook: CallHook | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._hook: CallHook = call_hook or _no_hook
        self._threads = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="neutron")
        # Calls made so far by (method, resource): lets tests and the CLI count round trips.
        self.calls: Counter[tuple[str, str]] = Counter()

    # --- generic resource operations -----------------------------------------------------

    async def query(self, resource: str, params: Params | None = None) -> list[Resource]:
        body = await self.request("GET", resource, f"/{resource}", params=params)
        return list(body.get(resource.replace("-", "_"), []))

    async def show(self, resource: str, resource_id: str) -> Resource | None:
        """The resource, or None when Neutron has no such id."""
        try:
            body = await self.request("GET", resource, f"/{resource}/{resource_id}")
        except NeutronError as exc:
            if exc.not_found:
                return None
            raise
        return dict(body[_singular(resource)])

    async def create(self, resource: str, attrs: Mapping[str, Any]) -> Resource:
        body = await self.request(
            "POST", resource, f"/{resource}", json={_singular(resource): dict(attrs)}
        )
        return dict(body[_singular(resource)])

    async def create_bulk(
        self, resource: str, items: Sequence[Mapping[str, Any]], timeout: float | None = None
    ) -> list[Resource]:
        """One POST creating all ``items``; Neutron makes them all or none. ``timeout``
        replaces the client's per-call bound (a bulk create costs one create per item)."""
        key = resource.replace("-", "_")
        body = await self.request(
            "POST", resource, f"/{resource}", json={key: [dict(i) for i in items]}, timeout=timeout
        )
        return list(body[key])

    async def update(
        self,
        resource: str,
        resource_id: str,
        attrs: Mapping[str, Any],
        revision: int | None = None,
    ) -> Resource:
        """``revision``: only if the resource is still at that revision_number, else
        NeutronError with ``stale`` (a decision taken on an older read is not applied)."""
        body = await self.request(
            "PUT",
            resource,
            f"/{resource}/{resource_id}",
            json={_singular(resource): dict(attrs)},
            headers=_if_match(revision),
        )
        return dict(body[_singular(resource)])

    async def delete(self, resource: str, resource_id: str, revision: int | None = None) -> bool:
        """Delete; False (not an error) when it was already gone. ``revision`` as in
        :meth:`update`."""
        try:
            await self.request(
                "DELETE", resource, f"/{resource}/{resource_id}", headers=_if_match(revision)
            )
        except NeutronError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def set_tags(self, resource: str, resource_id: str, tags: Sequence[str]) -> list[str]:
        """Replace all tags in one call (tags in POST bodies are ignored by Neutron)."""
        body = await self.request(
            "PUT", resource, f"/{resource}/{resource_id}/tags", json={"tags": sorted(set(tags))}
        )
        return list(body.get("tags", []))

    async def add_router_interface(self, router_id: str, subnet_id: str) -> Resource:
        return await self.request(
            "PUT",
            "routers",
            f"/routers/{router_id}/add_router_interface",
            json={"subnet_id": subnet_id},
        )

    async def remove_router_interface(self, router_id: str, subnet_id: str) -> bool:
        try:
            await self.request(
                "PUT",
                "routers",
                f"/routers/{router_id}/remove_router_interface",
                json={"subnet_id": subnet_id},
            )
        except NeutronError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def port_forwardings(self, floating_ip_id: str) -> list[Resource]:
        body = await self.request(
            "GET", _FORWARDINGS, f"/floatingips/{floating_ip_id}/port_forwardings"
        )
        return list(body.get("port_forwardings", []))

    async def add_port_forwarding(self, floating_ip_id: str, attrs: Mapping[str, Any]) -> Resource:
        body = await self.request(
            "POST",
            _FORWARDINGS,
            f"/floatingips/{floating_ip_id}/port_forwardings",
            json={"port_forwarding": dict(attrs)},
        )
        return dict(body["port_forwarding"])

    async def delete_port_forwarding(self, floating_ip_id: str, forwarding_id: str) -> bool:
        try:
            await self.request(
                "DELETE",
                _FORWARDINGS,
                f"/floatingips/{floating_ip_id}/port_forwardings/{forwarding_id}",
            )
        except NeutronError as exc:
            if exc.not_found:
                return False
            raise
        return True

    # --- transport -------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """Get a Keystone token now (nothing with noauth); NeutronError saying why not."""
        try:
            await self._in_thread(functools.partial(neutron_auth.authenticate, self._session))
        except ks_exc.ConnectFailure as exc:
            raise NeutronError(self._unreachable(exc), cause=CAUSE_UNREACHABLE) from exc
        except ks_exc.HttpError as exc:
            raise NeutronError(self._refused(exc), cause=CAUSE_CLIENT) from exc
        except ks_exc.ClientException as exc:
            raise NeutronError(f"cannot authenticate: {_short(exc)}", cause=CAUSE_CLIENT) from exc

    def _refused(self, exc: ks_exc.HttpError) -> str:
        return neutron_auth.refused(exc, neutron_auth.auth_url(self._session))

    async def _in_thread(self, call: Callable[[], Any]) -> Any:
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(context.run, call)
        )

    async def request(
        self,
        method: str,
        resource: str,
        path: str,
        json: Mapping[str, Any] | None = None,
        params: Params | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Neutron call; returns the decoded body ({} when empty). ``timeout``: this
        call's bound instead of the client's (still cut to the request's deadline)."""
        self.calls[(method, resource)] += 1
        url = f"{self._base}{path}"
        what = f"Neutron {method} {path}"
        attempt = renewals = 0
        bound = self._timeout if timeout is None else timeout
        while True:
            call_timeout = deadline.clamp(bound, what)
            try:
                with self._hook(method, resource):
                    # The outer bound also covers the wait for a free worker thread.
                    response = await asyncio.wait_for(
                        self._in_thread(
                            functools.partial(
                                self._send, method, url, json, params, call_timeout, headers
                            )
                        ),
                        call_timeout + _THREAD_SLACK,
                    )
            except (ks_exc.ConnectTimeout, TimeoutError) as exc:
                # The request may have reached Neutron: never repeated.
                raise NeutronError(
                    f"{what} failed: Neutron at {self._base} gave no answer within "
                    f"{call_timeout:.3g}s (is neutron-server overloaded or hung?)",
                    cause=CAUSE_TIMEOUT,
                ) from exc
            except ks_exc.ConnectFailure as exc:
                # A POST that may have been sent is not repeated: it could create twice.
                retriable = method != "POST" or _never_sent(exc)
                if attempt >= self._retries or not retriable:
                    raise NeutronError(
                        f"{what} failed: {self._unreachable(exc)}", cause=CAUSE_UNREACHABLE
                    ) from exc
                attempt += 1
                pause = min(_backoff(attempt), max(0.0, (deadline.remaining() or 60.0) - 0.5))
                LOG.warning(
                    "%s: cannot connect to %s, retry %d in %.1fs",
                    what,
                    "Neutron" if self._unreachable(exc).endswith("running?") else "Keystone",
                    attempt,
                    pause,
                )
                await asyncio.sleep(pause)
                continue
            except ks_exc.HttpError as exc:
                # Raised, not returned: Keystone's answer to authenticating (module doc).
                raise NeutronError(
                    f"{what} failed: {self._refused(exc)}", cause=CAUSE_CLIENT
                ) from exc
            except ks_exc.ClientException as exc:
                cause = CAUSE_UNREACHABLE if isinstance(exc, ks_exc.ConnectionError) else ""
                raise NeutronError(f"{what} failed: {_short(exc)}", cause=cause) from exc
            if neutron_auth.renewable(self._session, response, renewals):
                renewals += 1
                await neutron_auth.renew(self._session, what, renewals)
                continue
            return _decode(what, response)

    def _unreachable(self, exc: ks_exc.ConnectFailure) -> str:
        return _unreachable(exc, self._base)

    def _send(
        self,
        method: str,
        url: str,
        json: Mapping[str, Any] | None,
        params: Params | None,
        timeout: float,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        kwargs: dict[str, Any] = {"raise_exc": False, "timeout": timeout, "connect_retries": 0}
        if (rid := request_ids.current()) is not None:
            kwargs["global_request_id"] = rid
        if json is not None:
            kwargs["json"] = json
        if params:
            kwargs["params"] = params
        if headers:
            kwargs["headers"] = dict(headers)
        return self._session.request(url, method, **kwargs)


def _unreachable(exc: ks_exc.ConnectFailure, base: str) -> str:
    """Which service could not be reached (Neutron, or Keystone while authenticating)."""
    found = _FAILED_URL.search(str(exc))
    url = found.group(1) if found else base
    reason = _REASON.search(str(exc))
    why = f" ({reason.group(0)})" if reason else ""
    if base and url.startswith(base):
        return f"cannot connect to Neutron at {base}{why}; is neutron-server running?"
    return (
        f"cannot authenticate: cannot connect to the identity service (Keystone) at "
        f"{url}{why}; check [neutron] auth_url"
    )


def _if_match(revision: int | None) -> dict[str, str] | None:
    """Neutron's revision-if-match: the write fails with 412 once the resource changed."""
    return None if revision is None else {"If-Match": f"revision_number={revision}"}


def _never_sent(exc: BaseException) -> bool:
    """True when the connection was refused, so the request cannot have reached Neutron."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | urllib3_exc.NewConnectionError):
            return True
        if isinstance(seen, urllib3_exc.MaxRetryError) and isinstance(
            seen.reason, urllib3_exc.NewConnectionError
        ):
            return True
        nested = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        seen = seen.__cause__ or seen.__context__ or (nested[0] if nested else None)
    return False


def _short(exc: BaseException) -> str:
    """The first line of an exception, clipped: urllib3 nests whole reprs in its messages."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _backoff(attempt: int) -> float:
    return _BACKOFF_SECONDS * (2 ** (attempt - 1))


def _singular(resource: str) -> str:
    """The body key of one resource: ``security-groups`` -> ``security_group``."""
    return resource.replace("-", "_").removesuffix("s")


def _decode(what: str, response: Any) -> dict[str, Any]:
    status = int(response.status_code)
    if status < 300:
        if status == 204 or not response.content:
            return {}
        return dict(response.json())
    neutron_type, detail = "", response.text.strip()
    try:
        err = response.json().get("NeutronError") or {}
        neutron_type = str(err.get("type", ""))
        detail = str(err.get("message", detail))
    except ValueError:
        pass
    label = f"{status} {neutron_type}".strip()
    raise NeutronError(f"{what} failed: {label}: {detail[:500]}", status, neutron_type)


def connect(config: NeutronConfig, call_hook: CallHook | None = None) -> Neutron:
    """Build the client from config: noauth + endpoint, a clouds.yaml cloud, or ``OS_*``."""
    import openstack  # deferred: importing openstacksdk costs ~0.5 s

    started = time.perf_counter()
    kwargs: dict[str, Any] = {"api_timeout": config.timeout}
    if config.region_name:
        kwargs["region_name"] = config.region_name
    try:
        if config.auth_type == "none":
            if not config.endpoint:
                raise NeutronError("[neutron] auth_type = none needs an endpoint")
            conn = openstack.connection.Connection(
                auth_type="none",
                auth={"endpoint": config.endpoint},
                network_endpoint_override=config.endpoint,
                **kwargs,
            )
            base = config.endpoint
        else:
            if config.auth_type:
                kwargs["auth_type"] = config.auth_type
            if config.auth:
                kwargs["auth"] = dict(config.auth)
            if config.endpoint:
                kwargs["network_endpoint_override"] = config.endpoint
            conn = openstack.connect(cloud=config.cloud or None, **kwargs)
            base = config.endpoint or str(
                conn.session.get_endpoint(
                    service_type="network",
                    interface="public",
                    region_name=config.region_name or None,
                )
            )
    except ks_exc.ConnectFailure as exc:
        raise NeutronError(
            f"cannot set up the Neutron client: {_unreachable(exc, '')}", cause=CAUSE_UNREACHABLE
        ) from exc
    except ks_exc.HttpError as exc:
        # The connection exists: only the catalog lookup authenticates.
        reason = neutron_auth.refused(exc, neutron_auth.auth_url(conn.session))
        raise NeutronError(
            f"cannot set up the Neutron client: {reason}", cause=CAUSE_CLIENT
        ) from exc
    except (ks_exc.ClientException, openstack.exceptions.SDKException) as exc:
        raise NeutronError(f"cannot set up the Neutron client: {exc}") from exc
    base = base.rstrip("/")
    if not base.endswith(API_VERSION):
        base = f"{base}/{API_VERSION}"
    pooled = HTTPAdapter(pool_maxsize=WORKER_THREADS)
    for scheme in ("http://", "https://"):
        conn.session.session.mount(scheme, pooled)
    LOG.debug("Neutron client for %s ready in %.2fs", base, time.perf_counter() - started)
    return Neutron(conn.session, base, config.timeout, config.retries, call_hook)
