"""A second neutron-server, behind Keystone (``auth_strategy = keystone``, keystonemiddleware's
``[keystone_authtoken]``), on 127.0.0.1:9697: ``kuryr stack up --keystone``.

It shares the noauth server's database and OVN, so both see the same networks and ports;
the noauth one on 9696, which the test suite uses, is left as it is. Two servers on one
database are an HA Neutron: ML2/OVN spreads OVN's events (a port going up, ...) over the API
workers of both through its hash ring, whose rows carry ``[DEFAULT] host``. This server
gets a ``host`` of its own, or its start would delete the noauth server's rows (each server
clears its host's rows at start). Its rows are deleted again when it stops or is found
killed: until they are, events hashed to it would be lost.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request

from kuryr.stack import proc
from kuryr.stack.errors import StackError
from kuryr.stack.keystone import PROJECT, Keystone
from kuryr.stack.layout import KEYSTONE_URL, NEUTRON_KEYSTONE_PORT, NEUTRON_KEYSTONE_URL, Layout
from kuryr.stack.neutron import MARKER, Neutron
from kuryr.stack.postgres import Postgres

HOST = "kuryr-stack-neutron-keystone"


class NeutronKeystone(Neutron):
    name = "neutron-keystone"
    port = NEUTRON_KEYSTONE_PORT
    url = NEUTRON_KEYSTONE_URL
    directory = "neutron-keystone"
    process = "neutron-server-keystone"
    kind = "Keystone auth, the same database and OVN as :9696"

    def __init__(self, layout: Layout, postgres: Postgres, keystone: Keystone) -> None:
        super().__init__(layout, postgres)
        self.keystone = keystone

    def _auth_conf(self) -> str:
        return f"auth_strategy = keystone\nhost = {HOST}"

    def _extra_conf(self) -> str:
        # token_cache_time -1: every request's token is validated by Keystone, so a revoked
        # or expired token is refused at once (keystonemiddleware would otherwise trust its
        # cache for 300 s).
        return f"""
[keystone_authtoken]
www_authenticate_uri = {KEYSTONE_URL}
auth_url = {KEYSTONE_URL}
auth_type = password
username = neutron
password = {self.keystone.password("neutron")}
project_name = {PROJECT}
user_domain_name = Default
project_domain_name = Default
token_cache_time = -1
"""

    def _migrate(self) -> None:
        """The noauth server, started first, migrated the shared database."""

    def answers(self) -> bool:
        """The version document answers without a token; a network list must not."""
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=3):
                pass
        except (OSError, ValueError):
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/v2.0/networks?limit=1", timeout=3):
                return False
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except (OSError, ValueError):
            return False

    def _forget_hash_ring(self) -> None:
        self.postgres.psql(f"DELETE FROM ovn_hash_ring WHERE hostname = '{HOST}'", "neutron")

    def start(self) -> None:
        if proc.running(self.pidfile, MARKER) is None:
            # Killed (or never started): what its workers registered is stale.
            self._forget_hash_ring()
        super().start()

    def stop(self) -> None:
        super().stop()
        # With PostgreSQL down (killed) the rows stay: the next start deletes them.
        with contextlib.suppress(StackError):
            self._forget_hash_ring()
