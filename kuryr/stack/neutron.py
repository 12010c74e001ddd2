"""neutron-server with ML2/OVN and noauth, run by Debian's python on 127.0.0.1:9696, with
its configuration and migration stamp in the stack directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kuryr.stack import neutron_api, proc
from kuryr.stack.errors import StackError
from kuryr.stack.http_service import HttpService
from kuryr.stack.layout import NB_PORT, NEUTRON_PORT, NEUTRON_URL, SB_PORT, Layout, write_if_changed
from kuryr.stack.postgres import Postgres

MARKER = "neutron-server"

_ML2_CONF = f"""[ml2]
type_drivers = local,flat,vlan,geneve
tenant_network_types = geneve
mechanism_drivers = ovn
# tag_ports_during_bulk_creation: Neutron keeps the tags of a port POST, so Kuryr's pool
# ports are tagged by their bulk create instead of one PUT /ports/{{id}}/tags each.
extension_drivers = port_security,tag_ports_during_bulk_creation

# The external network (kuryr.stack.external).
[ml2_type_flat]
flat_networks = public

[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38

[securitygroup]
enable_security_group = true

[ovn]
ovn_nb_connection = tcp:127.0.0.1:{NB_PORT}
ovn_sb_connection = tcp:127.0.0.1:{SB_PORT}
ovn_metadata_enabled = true
neutron_sync_mode = off
"""


def _package_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "python3-neutron"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return done.stdout.decode().strip() or "unknown"


class Neutron:
    """The noauth neutron-server; :mod:`kuryr.stack.neutron_keystone` derives the second
    one (Keystone auth, another port, the same database and OVN) from it."""

    name = "neutron"
    port = NEUTRON_PORT
    url = NEUTRON_URL
    # The stack subdirectory of its configuration, and the name of its pidfile and log.
    directory = "neutron"
    process = "neutron-server"
    kind = "noauth, ML2/OVN"

    def __init__(self, layout: Layout, postgres: Postgres) -> None:
        self.layout = layout
        self.postgres = postgres
        self.conf_dir = layout.sub(self.directory)
        self.pidfile = layout.pidfile(self.process)

    @property
    def log(self) -> Path:
        return self.layout.log(self.process)

    @property
    def config_files(self) -> list[Path]:
        return [self.conf_dir / "neutron.conf", self.conf_dir / "ml2_conf.ini"]

    def _neutron_conf(self) -> str:
        state = self.conf_dir / "state"
        return f"""[DEFAULT]
core_plugin = ml2
service_plugins = ovn-router,port_forwarding,trunk
{self._auth_conf()}
bind_host = 127.0.0.1
bind_port = {self.port}
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
transport_url = fake://
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
state_path = {state}
api_paste_config = /etc/neutron/api-paste.ini

[database]
connection = {self.postgres.url}

[oslo_concurrency]
lock_path = {state / "lock"}

[oslo_policy]
policy_file = {self.conf_dir / "policy.yaml"}
policy_dirs = {self.conf_dir / "policy.d"}

[agent]
root_helper =

# One project holds every test and benchmark resource here; the defaults (100 networks,
# 10 security groups) are a cloud's per-tenant budget, not a single host's.
[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_security_group = -1
quota_security_group_rule = -1
{self._extra_conf()}"""

    def _auth_conf(self) -> str:
        return "auth_strategy = noauth"

    def _extra_conf(self) -> str:
        """Whole sections the derived server adds to neutron.conf."""
        return ""

    def answers(self) -> bool:
        return neutron_api.answers()

    def _write_config(self) -> bool:
        (self.conf_dir / "policy.d").mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "state" / "lock").mkdir(parents=True, exist_ok=True)
        changed = write_if_changed(self.config_files[0], self._neutron_conf(), 0o600)
        changed |= write_if_changed(self.config_files[1], _ML2_CONF)
        changed |= write_if_changed(self.conf_dir / "policy.yaml", "{}\n")
        return changed

    def _config_args(self) -> list[str]:
        return [arg for path in self.config_files for arg in ("--config-file", str(path))]

    def _migrate(self) -> None:
        """Run the migrations once per database and Neutron package version."""
        stamp = self.conf_dir / "migrated"
        wanted = _package_version()
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return
        log = self.layout.log("neutron-db-manage")
        with open(log, "ab") as out:
            done = subprocess.run(
                ["neutron-db-manage", *self._config_args(), "upgrade", "heads"],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )
        if done.returncode != 0:
            raise StackError(self.name, "neutron-db-manage upgrade heads failed", log)
        stamp.write_text(wanted + "\n")

    @property
    def service(self) -> HttpService:
        # Workers outlive a killed neutron-server and keep its port: they carry our config.
        return HttpService(
            self.name,
            "neutron-server",
            self.pidfile,
            MARKER,
            self.config_files[0],
            self.port,
            self.url,
            self.log,
            self.answers,
        )

    def start(self) -> None:
        changed = self._write_config()
        self._migrate()
        self.service.start(
            [
                "/usr/bin/python3",
                "/usr/bin/neutron-server",
                *self._config_args(),
                f"--log-file={self.log}",
            ],
            self.layout.log(f"{self.process}.stdout"),
            restart=changed,
        )

    def stop(self) -> None:
        self.service.stop()

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, MARKER) is None:
            return False, "neutron-server is not running"
        if not self.answers():
            return False, f"{self.url} does not answer"
        return True, f"{self.url} ({self.kind})"

    def purge(self) -> None:
        """Its database goes with the PostgreSQL cluster."""
