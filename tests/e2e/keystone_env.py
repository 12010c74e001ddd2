"""The stack's Keystone for the tests that run Kuryr against the Keystone-protected Neutron.

``kuryr stack up --keystone --token-lifetime 160`` once per session (additive: the noauth
Neutron and the stack's daemon are left as they are), the ``kuryr`` user's credentials, its
application credentials, the ways Kuryr is given them ([neutron] ``cloud`` with a
clouds.yaml, or ``OS_*`` variables), and what the Keystone and Neutron logs said since a mark.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuryr.stack import keystone, keystone_api, lifecycle
from kuryr.stack.keystone import PROJECT
from kuryr.stack.layout import KEYSTONE_URL, Layout
from kuryr.stack.postgres import Postgres
from tests.integration.private_daemon import KURYR

# keystoneauth renews a token once it is within 120 s of expiring: at 160 s a token serves
# Kuryr for 40 s, so a burst of 60 s outlives the token it began with.
TOKEN_LIFETIME = 160
AUTH_URL = f"{KEYSTONE_URL}/v3"
PASSWORD, APP_CREDENTIAL = "password", "application credential"
CLOUDS_YAML, OS_VARS = "clouds.yaml", "OS_*"
# Private daemons' networks are not the stack dockerd's: its view must not drive healing.
NO_HEALING = "[reconcile]\ninterval = 0\n"


@dataclass(frozen=True)
class KeystoneFacts:
    layout: Layout
    clouds_yaml: Path
    password: str
    admin_password: str
    user_id: str
    project_id: str

    def user_token(self) -> str:
        return keystone_api.password_token("kuryr", self.password, PROJECT)

    def revoke_tokens(self) -> None:
        """Every token of ``kuryr`` is revoked: Keystone does so when a password is set, here
        to the one it has."""
        admin = keystone_api.password_token("admin", self.admin_password, "admin")
        keystone_api.set_password(admin, self.user_id, self.password)


def bring_up(layout: Layout) -> KeystoneFacts:
    choice = lifecycle.KeystoneChoice(on=True, token_lifetime=TOKEN_LIFETIME)
    report = {h.name: h for h in lifecycle.start(layout, identity=choice)}
    for name in ("keystone", "neutron-keystone"):
        if not report[name].healthy:
            pytest.fail(f"{name} is not healthy: {report[name].detail}", pytrace=False)
    identity = keystone.Keystone(layout, Postgres(layout))
    admin_password = identity.password("admin")
    admin = keystone_api.password_token("admin", admin_password, "admin")
    [user] = keystone_api.find(admin, "users", name="kuryr")
    [project] = keystone_api.find(admin, "projects", name=PROJECT)
    return KeystoneFacts(
        layout,
        identity.clouds_yaml,
        identity.password("kuryr"),
        admin_password,
        user["id"],
        project["id"],
    )


@contextmanager
def application_credential(facts: KeystoneFacts) -> Iterator[tuple[str, str]]:
    """A new application credential of ``kuryr`` on project service: (id, secret)."""
    token = facts.user_token()
    path = f"/users/{facts.user_id}/application_credentials"
    body = {"application_credential": {"name": f"ks-e2e-{secrets.token_hex(4)}"}}
    answer, _ = keystone_api.call("POST", path, token, body)
    made = answer["application_credential"]
    try:
        yield made["id"], made["secret"]
    finally:
        keystone_api.call("DELETE", f"{path}/{made['id']}", facts.user_token())


def credentials(
    kind: str, where: str, facts: KeystoneFacts, root: Path, credential: tuple[str, str]
) -> tuple[str, dict[str, str]]:
    """Kuryr's ``[neutron]`` section and environment for ``kind`` given ``where``;
    ``credential`` is (user name, password) or (application credential id, secret). No
    endpoint: Kuryr finds Neutron in Keystone's catalog."""
    first, secret = credential
    if kind == PASSWORD:
        auth = {
            "auth_url": AUTH_URL,
            "username": first,
            "password": secret,
            "project_name": PROJECT,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        auth_type = "password"
    else:
        auth = {
            "auth_url": AUTH_URL,
            "application_credential_id": first,
            "application_credential_secret": secret,
        }
        auth_type = "v3applicationcredential"
    if where == OS_VARS:
        env = {f"OS_{key.upper()}": value for key, value in auth.items()}
        env["OS_AUTH_TYPE"] = auth_type
        return "[neutron]\n", env
    clouds = root / "clouds.yaml"
    lines = "".join(f"      {key}: {value}\n" for key, value in auth.items())
    clouds.write_text(
        f"clouds:\n  ks-e2e:\n    auth_type: {auth_type}\n    auth:\n{lines}"
        "    region_name: RegionOne\n"
    )
    clouds.chmod(0o600)
    return "[neutron]\ncloud = ks-e2e\n", {"OS_CLIENT_CONFIG_FILE": str(clouds)}


def write_config(root: Path, neutron_section: str) -> Path:
    conf = root / "kuryr.conf"
    conf.write_text(
        f"[DEFAULT]\ndebug = true\nsocket = {root / 'kuryr.sock'}\n"
        f"state_dir = {root / 'state'}\n{neutron_section}\n{NO_HEALING}"
    )
    return conf


def kuryr(
    conf: Path, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``kuryr --config-file conf ARGS`` with ``env`` added, and only the ``OS_*`` variables
    given (none from the test's own environment)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return subprocess.run(
        [str(KURYR), "--config-file", str(conf), *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=timeout,
        check=False,
    )


@dataclass
class LogMark:
    """Where two logs ended at a moment: what came after is what a test caused."""

    layout: Layout

    def __post_init__(self) -> None:
        self.keystone = self._size(self.keystone_log)
        self.neutron = self._size(self.neutron_log)

    @property
    def keystone_log(self) -> Path:
        return self.layout.log("keystone.stdout")

    @property
    def neutron_log(self) -> Path:
        return self.layout.log("neutron-server-keystone")

    @staticmethod
    def _size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    @staticmethod
    def _since(path: Path, offset: int) -> list[str]:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()

    def tokens_issued_to_kuryr(self) -> int:
        """Tokens Keystone issued since the mark to openstacksdk clients (Kuryr here)."""
        lines = self._since(self.keystone_log, self.keystone)
        return sum(
            1 for line in lines if "POST /v3/auth/tokens 201" in line and "openstacksdk" in line
        )

    def neutron_refusals(self) -> int:
        """Requests the Keystone-protected Neutron answered 401 since the mark, but the
        stack's probe (``kuryr stack status`` sends it without a token)."""
        lines = self._since(self.neutron_log, self.neutron)
        probe = "GET /v2.0/networks?limit=1 "
        return sum(1 for line in lines if "status: 401" in line and probe not in line)
