"""When Kuryr renews a token Neutron refused after keystoneauth's own renewal (a token issued
within the second of a revocation is revoked too): kuryr.backends.neutron_auth."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneauth1.noauth import NoAuth

from kuryr.backends import neutron_auth


@dataclass
class Answer:
    status_code: int


def keystone_session() -> ks_session.Session:
    auth = v3.Password(
        auth_url="http://127.0.0.1:5000/v3", username="u", password="p", project_name="p"
    )
    return ks_session.Session(auth=auth)


def test_a_401_to_a_keystone_token_is_renewed_at_most_renewals_times() -> None:
    session = keystone_session()
    assert neutron_auth.renewable(session, Answer(401), 0)
    assert neutron_auth.renewable(session, Answer(401), neutron_auth.RENEWALS - 1)
    assert not neutron_auth.renewable(session, Answer(401), neutron_auth.RENEWALS)


def test_other_answers_and_noauth_are_not_renewed() -> None:
    assert not neutron_auth.renewable(keystone_session(), Answer(403), 0)
    assert not neutron_auth.renewable(keystone_session(), Answer(200), 0)
    assert not neutron_auth.renewable(ks_session.Session(auth=NoAuth()), Answer(401), 0)


def test_renewal_drops_the_token_so_the_next_call_fetches_one() -> None:
    session = keystone_session()
    plugin = session.auth
    assert isinstance(plugin, v3.Password)
    plugin.auth_ref = object()  # type: ignore[assignment]
    asyncio.run(neutron_auth.renew(session, "Neutron POST /ports", 1))
    assert plugin.auth_ref is None
