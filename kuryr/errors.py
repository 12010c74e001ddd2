"""Errors the domain raises; the server turns them into Docker's error envelopes."""

from __future__ import annotations


class KuryrError(Exception):
    """A failure with a message meant for the Docker user. ``status`` is the HTTP status."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(KuryrError):
    """The request is malformed or asks for something impossible; nothing was changed."""

    status = 400


class NotFound(KuryrError):
    """The request names a network, endpoint, pool or address that Kuryr does not know."""

    status = 404


class Conflict(KuryrError):
    """The request collides with existing state (an address in use, a pool overlap)."""

    status = 409


# The answer header naming a backend failure's kind, so a client (or a test) can tell a
# backend that failed from a request the backend refused without parsing the message.
CAUSE_HEADER = "X-Kuryr-Cause"


class BackendError(KuryrError):
    """Neutron or OVSDB failed or timed out; the message names the cause.

    ``cause`` is the kind of failure, sent in :data:`CAUSE_HEADER`: ``backend`` here,
    narrower in subclasses (``neutron-timeout``, ``neutron-4xx``, ...).
    """

    status = 502
    cause = "backend"
