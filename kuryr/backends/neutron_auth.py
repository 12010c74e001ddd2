"""Authenticating to Keystone for the Neutron client, and the one line Kuryr says when that
fails: Keystone's address and what to check, never a credential or a user name.

keystoneauth does the rest: it keeps the token, fetches a new one before the old one is
within two minutes of expiring, and when Neutron still answers 401 (a token revoked, or
expired early) it fetches a new one and sends the request once more. A request that fails
because of authentication raises :class:`keystoneauth1.exceptions.HttpError` from inside
``Session.request``; Neutron's own HTTP errors never raise (``raise_exc=False``), so such an
exception is Keystone's answer.

keystoneauth renews once; the new token can be refused too. Keystone revokes by time, and a
token carries its issue time in whole seconds, so one issued within the second of a
revocation (a password change, say) counts as revoked. Kuryr then renews again, after that
second has passed (:func:`renew`): a 401 comes from Keystone's middleware before Neutron acts,
so even a POST is safe to send again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity.base import BaseIdentityPlugin

from kuryr import deadline

LOG = logging.getLogger(__name__)

WHERE = "[neutron] options, the clouds.yaml entry or OS_* variables"
# Renewals after keystoneauth's own, and the pause before each (past the revocation's second).
RENEWALS = 2
_RENEW_PAUSE = 1.1


def uses_keystone(session: Any) -> bool:
    """False for the noauth plugin (``auth_type = none``)."""
    return isinstance(getattr(session, "auth", None), BaseIdentityPlugin)


def auth_url(session: Any) -> str:
    return str(getattr(getattr(session, "auth", None), "auth_url", "") or "the auth_url")


def authenticate(session: Any) -> None:
    """Get a token now (blocking), so that bad credentials show at start, not at the first
    container. Raises keystoneauth's exceptions."""
    if uses_keystone(session):
        session.get_auth_headers()


def refused(exc: ks_exc.HttpError, url: str) -> str:
    """Keystone answered, and not with a token."""
    status = getattr(exc, "http_status", None)
    if status == 401:
        return (
            f"cannot authenticate: Keystone at {url} refused the credentials (HTTP 401); "
            f"check the password or application credential ({WHERE})"
        )
    # Not Keystone's text: it may echo what was sent (a user or project name).
    return (
        f"cannot authenticate: Keystone at {url} answered HTTP {status} "
        f"({type(exc).__name__}); check {WHERE}"
    )


def renewable(session: Any, response: Any, renewals: int) -> bool:
    """Neutron answered 401 to a token keystoneauth had already renewed once, and Kuryr has
    renewed it fewer than RENEWALS times since."""
    unauthorized = getattr(response, "status_code", None) == 401
    return unauthorized and renewals < RENEWALS and uses_keystone(session)


async def renew(session: Any, what: str, renewal: int) -> None:
    """Wait past the second of a revocation, then drop the token: the next call fetches one."""
    LOG.warning("%s: Neutron refused a renewed token; renewing it again (%d)", what, renewal)
    await asyncio.sleep(min(_RENEW_PAUSE, max(0.0, (deadline.remaining() or 60.0) - 0.5)))
    session.invalidate()
