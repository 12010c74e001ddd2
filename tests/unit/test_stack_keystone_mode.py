"""``kuryr stack up --keystone``: where Keystone and its Neutron come in the order, what the two
Neutrons are configured with, the token lifetime, and the one line Kuryr says when Keystone
refuses it; nothing here starts a process."""

from __future__ import annotations

from pathlib import Path

import pytest
from keystoneauth1 import exceptions as ks_exc

from kuryr.backends import neutron_auth
from kuryr.cli import build_parser
from kuryr.stack import keystone, lifecycle
from kuryr.stack.errors import StackError
from kuryr.stack.layout import Layout
from kuryr.stack.neutron import Neutron
from kuryr.stack.neutron_keystone import HOST, NeutronKeystone
from kuryr.stack.postgres import Postgres


def names(layout: Layout) -> list[str]:
    return [c.name for c in lifecycle.components(layout)]


def test_keystone_and_its_neutron_come_last_and_only_when_asked(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert "keystone" not in names(layout)
    keystone.remember(layout, True)
    assert keystone.enabled(layout)
    assert names(layout)[-2:] == ["keystone", "neutron-keystone"]
    assert names(layout).index("neutron") < names(layout).index("neutron-keystone")
    # Their failure fails up, but keeps neither the rest of the stack nor its tests down.
    assert {"keystone", "neutron-keystone"} <= lifecycle.NOT_BLOCKING
    keystone.remember(layout, False)
    assert "neutron-keystone" not in names(layout)


def test_the_two_neutrons_differ_in_auth_port_and_hash_ring_host(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    postgres = Postgres(layout)
    identity = keystone.Keystone(layout, postgres)
    plain = Neutron(layout, postgres)._neutron_conf()
    protected = NeutronKeystone(layout, postgres, identity)._neutron_conf()
    assert "auth_strategy = noauth" in plain and "bind_port = 9696" in plain
    assert "\nhost =" not in plain and "keystone_authtoken" not in plain
    assert "auth_strategy = keystone" in protected and "bind_port = 9697" in protected
    assert f"host = {HOST}" in protected
    assert f"password = {identity.password('neutron')}" in protected
    # One database for both.
    assert postgres.url in plain and postgres.url in protected


def test_the_token_lifetime_is_kept_and_configured(tmp_path: Path) -> None:
    identity = keystone.Keystone(Layout(tmp_path), Postgres(Layout(tmp_path)))
    assert identity.token_lifetime() == keystone.DEFAULT_TOKEN_LIFETIME
    identity.set_token_lifetime(150)
    assert keystone.Keystone(Layout(tmp_path), Postgres(Layout(tmp_path))).token_lifetime() == 150
    assert "expiration = 150" in identity._keystone_conf()
    with pytest.raises(StackError):
        identity.set_token_lifetime(0)


def test_the_stack_cli_takes_keystone_options() -> None:
    args = build_parser().parse_args(["stack", "up", "--keystone", "--token-lifetime", "150"])
    assert (args.keystone, args.token_lifetime) == (True, 150)
    args = build_parser().parse_args(["stack", "up", "--no-keystone"])
    assert (args.keystone, args.token_lifetime) == (False, None)
    assert build_parser().parse_args(["stack", "up"]).keystone is None


def test_a_refusal_names_keystone_and_never_what_was_sent() -> None:
    url = "http://127.0.0.1:5000/v3"
    refused = neutron_auth.refused(ks_exc.Unauthorized(message="user rel-user-1 unknown"), url)
    assert refused.startswith(f"cannot authenticate: Keystone at {url} refused the credentials")
    assert "HTTP 401" in refused and "rel-user-1" not in refused
    other = neutron_auth.refused(ks_exc.BadRequest(message="project rel-project-1 bad"), url)
    assert "HTTP 400" in other and "rel-project-1" not in other
