"""Keystone for the stack (``kuryr stack up --keystone``): Debian's python3-keystone served by
uwsgi on 127.0.0.1:5000, its database in the stack's PostgreSQL, fernet tokens.

Only python3-keystone is installed, not Debian's ``keystone`` package: that one's maintainer
scripts configure a database through dbconfig-common and start a system service, both of
which the stack does itself. Everything lives under ``<stack>/keystone``: keystone.conf, the
fernet and credential key repositories, the passwords (one file each, mode 0600) and a
``clouds.yaml`` with the stack's two clouds, ``kuryr-stack`` (user ``kuryr``) and
``kuryr-stack-admin``.

Accounts, all in the default domain: ``admin`` (project ``admin``, keystone-manage bootstrap,
which also registers the identity endpoints), and in project ``service`` the users
``neutron`` (keystonemiddleware's, role admin: it validates tokens) and ``kuryr`` (roles
admin, which Neutron's default policy requires for ``binding:host_id``, and member). The
catalog's network endpoint is the Keystone-protected Neutron,
:mod:`kuryr.stack.neutron_keystone`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from pathlib import Path

from kuryr.stack import keystone_api, proc
from kuryr.stack.errors import StackError
from kuryr.stack.http_service import HttpService
from kuryr.stack.layout import (
    KEYSTONE_PORT,
    KEYSTONE_URL,
    NEUTRON_KEYSTONE_URL,
    Layout,
    write_if_changed,
)
from kuryr.stack.postgres import Postgres

MARKER = "keystone-wsgi-public"
WSGI = Path("/usr/bin/keystone-wsgi-public")
REGION = "RegionOne"
PROJECT = "service"
USERS = {"neutron": ("admin",), "kuryr": ("admin", "member")}
MODE_FILE = "keystone-mode"
DEFAULT_TOKEN_LIFETIME = 3600


def enabled(layout: Layout) -> bool:
    try:
        return layout.sub(MODE_FILE).read_text().strip() == "on"
    except FileNotFoundError:
        return False


def remember(layout: Layout, on: bool) -> None:
    layout.create()
    layout.sub(MODE_FILE).write_text("on\n" if on else "off\n")


def _package_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "python3-keystone"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return done.stdout.decode().strip()


class Keystone:
    name = "keystone"

    def __init__(self, layout: Layout, postgres: Postgres) -> None:
        self.layout = layout
        self.postgres = postgres
        self.conf_dir = layout.sub("keystone")
        self.conf = self.conf_dir / "keystone.conf"
        self.pidfile = layout.pidfile("keystone")

    @property
    def log(self) -> Path:
        return self.layout.log("keystone")

    @property
    def clouds_yaml(self) -> Path:
        return self.conf_dir / "clouds.yaml"

    def password(self, user: str) -> str:
        path = self.conf_dir / f"{user}.secret"
        if not path.exists():
            self.conf_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path.read_text().strip()

    def token_lifetime(self) -> int:
        try:
            return int((self.conf_dir / "token-lifetime").read_text())
        except (OSError, ValueError):
            return DEFAULT_TOKEN_LIFETIME

    def set_token_lifetime(self, seconds: int) -> None:
        if seconds < 1:
            raise StackError(self.name, f"a token lifetime must be positive, not {seconds}")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "token-lifetime").write_text(f"{seconds}\n")

    def _keystone_conf(self) -> str:
        return f"""[DEFAULT]
log_file = {self.log}

[database]
connection = {self.postgres.database_url("keystone")}

[token]
provider = fernet
expiration = {self.token_lifetime()}

[fernet_tokens]
key_repository = {self.conf_dir / "fernet-keys"}

[fernet_receipts]
key_repository = {self.conf_dir / "fernet-keys"}

[credential]
key_repository = {self.conf_dir / "credential-keys"}

# bcrypt's fewest rounds: each password or application-credential authentication costs
# about 2 ms instead of about 250 ms at the default 12 (a test stack on two cores).
[identity]
password_hash_rounds = 4

[oslo_policy]
policy_file = {self.conf_dir / "policy.yaml"}
policy_dirs = {self.conf_dir / "policy.d"}
"""

    def _clouds_yaml(self) -> str:
        def cloud(name: str, user: str, project: str) -> str:
            return f"""  {name}:
    auth:
      auth_url: {KEYSTONE_URL}/v3
      username: {user}
      password: {self.password(user)}
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {REGION}
    identity_api_version: 3
"""

        kuryr = cloud("kuryr-stack", "kuryr", PROJECT)
        return "clouds:\n" + kuryr + cloud("kuryr-stack-admin", "admin", "admin")

    def _write_config(self) -> bool:
        (self.conf_dir / "policy.d").mkdir(parents=True, exist_ok=True)
        write_if_changed(self.conf_dir / "policy.yaml", "{}\n")
        write_if_changed(self.clouds_yaml, self._clouds_yaml(), 0o600)
        changed = write_if_changed(self.conf, self._keystone_conf(), 0o600)
        # What uwsgi runs with, so that a change of it restarts uwsgi too.
        return write_if_changed(self.conf_dir / "uwsgi.argv", "\n".join(self._uwsgi())) or changed

    def _manage(self, *args: str, env: dict[str, str] | None = None) -> None:
        argv = ["keystone-manage", "--config-file", str(self.conf), *args]
        with open(self.layout.log("keystone-manage"), "ab") as out:
            done = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                check=False,
                timeout=300,
            )
        if done.returncode != 0:
            raise StackError(
                self.name, f"keystone-manage {args[0]} failed", self.layout.log("keystone-manage")
            )

    def _prepare(self) -> None:
        """Database, schema, key repositories: each once."""
        self.postgres.ensure_database("keystone")
        stamp = self.conf_dir / "synced"
        wanted = _package_version()
        if not stamp.exists() or stamp.read_text().strip() != wanted:
            self._manage("db_sync")
            stamp.write_text(wanted + "\n")
        owner = ("--keystone-user", "root", "--keystone-group", "root")
        if not any((self.conf_dir / "fernet-keys").glob("[0-9]*")):
            self._manage("fernet_setup", *owner)
        if not any((self.conf_dir / "credential-keys").glob("[0-9]*")):
            self._manage("credential_setup", *owner)

    @property
    def service(self) -> HttpService:
        # uwsgi's workers notice a killed master only after a while; they carry our path.
        return HttpService(
            self.name,
            "uwsgi",
            self.pidfile,
            MARKER,
            self.conf,
            KEYSTONE_PORT,
            KEYSTONE_URL,
            self.log,
            keystone_api.answers,
        )

    def start(self) -> None:
        changed = self._write_config()
        self._prepare()
        self.service.start(self._uwsgi(), self.layout.log("keystone.stdout"), restart=changed)
        self._bootstrap()
        self._accounts()

    def _uwsgi(self) -> list[str]:
        return [
            "uwsgi",
            "--plugin",
            "python3",
            "--http-socket",
            f"127.0.0.1:{KEYSTONE_PORT}",
            "--wsgi-file",
            str(WSGI),
            # keystone reads its configuration from there; it also puts the stack's path in
            # uwsgi's argv, which is how orphaned workers are found.
            "--env",
            f"OS_KEYSTONE_CONFIG_FILES={self.conf}",
            "--master",
            "--processes",
            "2",
            "--threads",
            "4",
            "--enable-threads",
            "--need-app",
            "--die-on-term",
            "--no-orphans",
            "--buffer-size",
            "65535",
            # uwsgi's http-socket closes the connection after each answer without saying so:
            # a client reusing it at once (keystoneauth's discovery GET, then its POST) would
            # see it drop. Saying so makes clients open a new one.
            "--add-header",
            "Connection: close",
            # One line per request, with the client's User-Agent: who authenticated when
            # (openstacksdk is Kuryr, keystonemiddleware the Keystone-protected Neutron).
            "--log-format",
            '%(addr) %(method) %(uri) %(status) %(msecs)ms "%(uagent)"',
        ]

    def _bootstrap(self) -> None:
        stamp = self.conf_dir / "bootstrapped"
        if stamp.exists():
            return
        url = f"{KEYSTONE_URL}/v3"
        self._manage(
            "bootstrap",
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
            "--bootstrap-region-id",
            REGION,
            # From the environment, not argv: argv is world-readable in /proc.
            env={"OS_BOOTSTRAP_PASSWORD": self.password("admin")},
        )
        stamp.write_text("done\n")

    def _accounts(self) -> None:
        """Project ``service``, its users and their roles, and the network endpoint; done once
        per set of passwords (setting a password again would revoke the user's tokens)."""
        wanted = hashlib.sha256(
            repr([(u, self.password(u)) for u in USERS] + [NEUTRON_KEYSTONE_URL]).encode()
        ).hexdigest()
        stamp = self.conf_dir / "accounts"
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return
        token = keystone_api.password_token("admin", self.password("admin"), "admin")
        project = keystone_api.ensure(
            token, "projects", PROJECT, {"domain_id": keystone_api.DOMAIN}
        )
        for user, roles in USERS.items():
            attrs = {"domain_id": keystone_api.DOMAIN, "password": self.password(user)}
            user_id = keystone_api.ensure(token, "users", user, attrs)
            keystone_api.set_password(token, user_id, self.password(user))
            for role in roles:
                keystone_api.grant(
                    token, project, user_id, keystone_api.ensure(token, "roles", role)
                )
        service = keystone_api.ensure(token, "services", "neutron", {"type": "network"})
        for interface in ("public", "internal", "admin"):
            keystone_api.ensure_endpoint(token, service, interface, NEUTRON_KEYSTONE_URL, REGION)
        stamp.write_text(wanted + "\n")

    def stop(self) -> None:
        self.service.stop()

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, MARKER) is None:
            return False, "keystone (uwsgi) is not running"
        if not keystone_api.answers():
            return False, f"{KEYSTONE_URL}/v3 does not answer"
        return True, f"{KEYSTONE_URL}/v3 (fernet, tokens live {self.token_lifetime()} s)"

    def purge(self) -> None:
        """Its database goes with the PostgreSQL cluster, its files with the stack directory."""
