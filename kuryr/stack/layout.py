"""Where the stack keeps its files: one directory holds configs, databases, pidfiles and
logs. OVS and OVN keep their sockets and pidfiles in their standard run directories so
that ovs-vsctl, ovs-appctl, ovn-nbctl and ovn-appctl work without options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path("/var/lib/kuryr-stack")
OVS_RUN = Path("/var/run/openvswitch")
OVN_RUN = Path("/var/run/ovn")
OVS_SOCK = OVS_RUN / "db.sock"
NB_SOCK = OVN_RUN / "ovnnb_db.sock"
SB_SOCK = OVN_RUN / "ovnsb_db.sock"
DOCKER_SOCK = Path("/var/run/docker.sock")
PLUGIN_SOCK = Path("/run/docker/plugins/kuryr.sock")
NEUTRON_URL = "http://127.0.0.1:9696"
NEUTRON_PORT = 9696
# Keystone and the second neutron-server, the one behind Keystone (kuryr stack up --keystone).
KEYSTONE_PORT = 5000
KEYSTONE_URL = "http://127.0.0.1:5000"
NEUTRON_KEYSTONE_PORT = 9697
NEUTRON_KEYSTONE_URL = "http://127.0.0.1:9697"
NB_PORT = 6641
SB_PORT = 6642
POSTGRES_PORT = 5433


@dataclass(frozen=True)
class Layout:
    root: Path
    # dockerd finds the plugin there; another path keeps a private daemon out of its sight.
    plugin_sock: Path = PLUGIN_SOCK

    @classmethod
    def resolve(cls, directory: str | None) -> Layout:
        chosen = directory or os.environ.get("KURYR_STACK_DIR") or str(DEFAULT_DIR)
        return cls(Path(chosen).absolute())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def sub(self, name: str) -> Path:
        return self.root / name

    def create(self) -> None:
        for path in (self.root, self.logs, self.run):
            path.mkdir(parents=True, exist_ok=True)
        # PostgreSQL runs as its own user and must traverse into its data directory.
        self.root.chmod(0o755)


def write_if_changed(path: Path, content: str, mode: int = 0o644) -> bool:
    """Write ``content`` unless the file already holds it; True when it changed."""
    try:
        if path.read_text() == content:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    tmp.chmod(mode)
    tmp.replace(path)
    return True
