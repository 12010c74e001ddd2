"""The time one Docker request may take, shared by every backend call it makes.

dockerd's plugin client gives up on a request after 30 s (``defaultTimeOut`` in moby's
pkg/plugins). A handler makes several Neutron and OVSDB calls in a row, each bounded on its
own; the request's deadline bounds their sum, so Docker always gets Kuryr's own error, which
names the cause, instead of a bare timeout. Outside a request (start-up, reconciliation) no
deadline applies and each call keeps its own bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

from kuryr.errors import BackendError

# dockerd 20.10+ (moby pkg/plugins/client.go): defaultTimeOut = 30 s per plugin request.
DOCKER_PLUGIN_TIMEOUT = 30.0
# Room left for the answer to travel back and for dockerd's own work around the call.
DEFAULT_REQUEST_TIMEOUT = 20.0
# What an undo after a failure may still spend once the request's own budget is gone.
CLEANUP_GRACE = 5.0

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("kuryr_deadline", default=None)


class DeadlineExceeded(BackendError):
    """The request's time budget ran out before a backend call could be made."""

    cause = "deadline"


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Run the block under a budget of ``seconds`` (the innermost budget wins)."""
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def cleanup() -> AbstractContextManager[None]:
    """A short fresh budget for undoing what a failed request made."""
    return bounded(CLEANUP_GRACE)


def remaining() -> float | None:
    """Seconds left in the current request's budget; None outside a request."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def clamp(timeout: float, what: str) -> float:
    """``timeout`` cut to what the request has left; raise when nothing is left."""
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        current = _deadline.get()
        budget = current[1] if current is not None else 0.0
        raise DeadlineExceeded(
            f"{what} not attempted: the request's {budget:g}s budget is spent "
            "(the backend answered too slowly)"
        )
    return min(timeout, left)
