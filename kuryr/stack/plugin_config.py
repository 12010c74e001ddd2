"""The managed (v2) Docker plugin's ``config.json``: what Docker gives the daemon it runs.

The daemon inside the plugin does what ``kuryr serve`` does on the host: it creates veths and
puts their host end on ``br-int`` (rtnetlink in the host's network namespace, hence network
``host`` and ``CAP_NET_ADMIN``, which also covers the ethtool ioctl that sets a veth's
offloads), talks to OVSDB on its unix socket, to Neutron over HTTP and to dockerd on its
socket (reconciliation), and keeps its state and admin socket in ``state_dir``. Each of
those paths is a mount whose host side ``docker plugin set <plugin> <mount>.source=PATH``
changes; the daemon's own keys are environment variables (``kuryr.config``'s overrides).
Docker puts the plugin's socket directory at ``/run/docker/plugins`` inside it, where the
daemon's default socket already is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kuryr.backends import dockerd
from kuryr.config import DEFAULT_CONFIG_FILE, BindingConfig, Config

# Where the builder puts the daemon's venv inside the rootfs.
VENV = PurePosixPath("/opt/kuryr")
SOCKET_NAME = Config.socket.name
INTERFACE_TYPES = ("docker.networkdriver/1.0", "docker.ipamdriver/1.0")
# Docker's default set (CAP_CHOWN for the socket's group, CAP_DAC_OVERRIDE, ...) plus these.
CAPABILITIES = ("CAP_NET_ADMIN",)


@dataclass(frozen=True)
class Mount:
    name: str
    path: str
    description: str
    writable: bool = True


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    description: str


# The directory, not the socket: OVS makes a new db.sock each time it starts.
OVSDB_DIR = str(PurePosixPath(BindingConfig.ovsdb_connection.removeprefix("unix:")).parent)

MOUNTS = (
    Mount("ovsdb", OVSDB_DIR, "OVS's run directory (OVSDB's db.sock)"),
    Mount("state", str(Config.state_dir), "the daemon's state (kuryr.db) and admin.sock"),
    Mount("config", str(DEFAULT_CONFIG_FILE.parent), "the config file's directory", False),
    Mount("docker", str(dockerd.SOCKET), "dockerd's API socket (reconciliation)"),
)

SETTINGS = (
    Setting(
        "KURYR_CONFIG",
        "",
        "config file inside the plugin; empty: /etc/kuryr/kuryr.conf if present (the config"
        " mount), else the defaults and the variables below",
    ),
    Setting("KURYR_DEBUG", "", "debug logging (true/false); empty: the file's"),
    Setting("KURYR_NEUTRON_AUTH_TYPE", "", "[neutron] auth_type (none for a noauth Neutron)"),
    Setting("KURYR_NEUTRON_ENDPOINT", "", "[neutron] endpoint, Neutron's URL"),
    Setting("KURYR_NEUTRON_CLOUD", "", "[neutron] cloud, a clouds.yaml entry"),
    Setting("KURYR_BINDING_HOST", "", "[binding] host; empty: OVSDB's external_ids:hostname"),
    Setting("KURYR_CAPABILITY_SCOPE", "", "capability_scope: global on every host of a swarm"),
)


def mount_entry(mount: Mount) -> dict[str, Any]:
    return {
        "Name": mount.name,
        "Description": mount.description,
        "Settable": ["source"],
        "Source": mount.path,
        "Destination": mount.path,
        "Type": "bind",
        "Options": ["rbind", "rw" if mount.writable else "ro"],
    }


def env_entry(setting: Setting) -> dict[str, Any]:
    return {
        "Name": setting.name,
        "Description": setting.description,
        "Settable": ["value"],
        "Value": setting.value,
    }


def config(version: str) -> dict[str, Any]:
    """The plugin's config.json (Docker's plugin config, version 1 of plugin v2)."""
    return {
        "Description": f"Kuryr {version}: Docker network and IPAM drivers on OpenStack Neutron",
        "Documentation": "Kuryr's README.md, section Managed plugin",
        "Entrypoint": [str(VENV / "bin" / "kuryr"), "serve"],
        "WorkDir": "/",
        "Interface": {"Types": list(INTERFACE_TYPES), "Socket": SOCKET_NAME},
        "Network": {"Type": "host"},
        "Linux": {"Capabilities": list(CAPABILITIES), "AllowAllDevices": False, "Devices": None},
        "Mounts": [mount_entry(m) for m in MOUNTS],
        "Env": [env_entry(s) for s in SETTINGS],
        "Args": {"Name": "", "Description": "", "Settable": None, "Value": None},
        "PidHost": False,
        "IpcHost": False,
    }


def render(version: str) -> str:
    return json.dumps(config(version), indent=2) + "\n"
