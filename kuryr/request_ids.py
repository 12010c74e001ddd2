"""The id of the Docker request being served, sent with each Neutron request it makes.

Every Neutron request made while a Docker request is served carries the Docker request's id
as ``X-OpenStack-Request-ID`` (keystoneauth's ``global_request_id``). neutron-server's
request_id middleware (oslo.middleware) takes an id of the form ``req-<uuid4>`` as the
request's *global* request id and logs it next to its own, so an operator finds in
neutron-server's log the lines one Docker request caused (Kuryr logs the id with the
request's refusal or failure), and a counting proxy tells the Neutron requests a Docker
request waited for from background work (pool refills, the journal, the status watcher),
whose tasks start from a fresh context (kuryr.domain.ports.journal.background) and so send
none.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("kuryr_request_id", default=None)


@contextmanager
def serving() -> Iterator[str]:
    """Serve the block as one Docker request under a fresh id; yields the id."""
    rid = f"req-{uuid.uuid4()}"
    with waited_for_by(rid):
        yield rid


@contextmanager
def waited_for_by(rid: str | None) -> Iterator[None]:
    """The block's Neutron requests carry ``rid``: background work a Docker request waits
    for (a pool's bulk create for the starts that missed), or none when no request waits."""
    token = _current.set(rid)
    try:
        yield
    finally:
        _current.reset(token)


def adopt(rid: str) -> None:
    """From now on the current context's Neutron requests carry ``rid``: for a task started
    with a context of its own to do part of that request's work (kuryr.domain.quiet)."""
    _current.set(rid)


def current() -> str | None:
    """The id of the Docker request being served; None outside one."""
    return _current.get()
