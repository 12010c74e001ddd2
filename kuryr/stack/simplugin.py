"""Kuryr as the managed plugin of a simulated host's dockerd instead of its bare daemon (Swarm
refuses legacy plugins, so a swarm of the simulated hosts needs this on each of them).

Each host's plugin is its own instance, ``kuryr`` in that host's dockerd, made from the
stack's plugin bundle (:mod:`kuryr.stack.plugin_build`). Its mounts are the host's: its OVS
run directory, the bare daemon's state directory (one state for both, as with ``up
--plugin``), a config directory of its own holding the host's config with the paths the
plugin sees (the host's name as ``binding:host_id``), and, inside the host, its dockerd's
socket. The bare daemon stops first, since both would serve the host's ports, and starts
again when the plugin is removed. The caller holds the stack lock.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from kuryr.config import DEFAULT_CONFIG_FILE
from kuryr.stack import plugin_build, plugin_config, proc
from kuryr.stack.daemon import START_TIMEOUT, activates
from kuryr.stack.errors import StackError
from kuryr.stack.hostplan import SimHost
from kuryr.stack.layout import Layout, write_if_changed
from kuryr.stack.plugin_rootfs import BuildError
from kuryr.stack.simdocker import SimDaemon

PLUGIN = "kuryr"
# Docker's driver name for the plugin (Docker 20.10 resolves a managed plugin's drivers only
# by the tagged name).
DRIVER = f"{PLUGIN}:latest"
# Creating a plugin sends its 240 MB rootfs to dockerd.
DOCKER_TIMEOUT = 300.0


def build(layout: Layout) -> Path:
    """The stack's plugin bundle, made or brought up to date with this checkout's code."""
    try:
        return plugin_build.Builder(layout.sub("plugin")).build()
    except (BuildError, OSError) as exc:
        raise StackError("plugin", f"building the plugin: {exc}") from exc


class SimPlugin:
    def __init__(self, layout: Layout, host: SimHost, scope: str = "global") -> None:
        self.layout = layout
        self.host = host
        self.scope = scope
        self.name = f"{host.name}/plugin"
        self.config_dir = host.root / "plugin-etc"

    def docker(self, *args: str, timeout: float = DOCKER_TIMEOUT) -> str:
        argv = ["docker", "-H", self.host.docker_host, "plugin", *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise StackError(self.name, f"plugin {args[0]} took over {timeout:.0f} s") from exc
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise StackError(self.name, f"plugin {args[0]}: {said[-1] if said else 'failed'}")
        return done.stdout

    def inspect(self) -> dict[str, Any] | None:
        try:
            found = json.loads(self.docker("inspect", PLUGIN))
        except StackError:
            return None
        return found[0] if found else None

    def socket(self, plugin_id: str) -> Path:
        """A link to the plugin's socket, from the machine. dockerd keeps its plugins' socket
        directories in its own mount namespace (seen through its /proc root), and that path
        is too long for a unix socket address; the link is short and connect follows it."""
        pid = proc.read_pid(self.host.pidfile("dockerd"))
        # /run, not the exec root /var/run: an absolute link under /proc/<pid>/root is
        # resolved from the machine's root.
        inside = Path("/run/docker/plugins") / plugin_id / plugin_config.SOCKET_NAME
        link = self.host.root / "plugin.sock"
        link.unlink(missing_ok=True)
        link.symlink_to(f"/proc/{pid}/root{inside}")
        return link

    def start(self, bundle: Path) -> None:
        """Replace the bare daemon with the plugin made from ``bundle`` and wait until it
        answers; an installed one is made again (its code or config may be older)."""
        SimDaemon(self.host).stop()
        write_if_changed(
            self.config_dir / DEFAULT_CONFIG_FILE.name, SimDaemon(self.host).config_text(self.scope)
        )
        self.host.state_dir.mkdir(parents=True, exist_ok=True)
        if self.inspect() is not None:
            self.docker("rm", "--force", PLUGIN)
        self.docker("create", PLUGIN, str(bundle))
        self.docker(
            "set",
            PLUGIN,
            f"config.source={self.config_dir}",
            f"state.source={self.host.state_dir}",
            f"ovsdb.source={self.host.ovs_run}",
        )
        self.docker("enable", "--timeout", f"{START_TIMEOUT:.0f}", PLUGIN)
        installed = self.inspect()
        if installed is None:
            raise StackError(self.name, f"plugin create {PLUGIN} made no plugin")
        sock = self.socket(installed["Id"])
        if not proc.wait_for(lambda: activates(sock)[0], START_TIMEOUT, 0.2):
            raise StackError(
                self.name, f"the plugin does not answer on {sock}", self.host.log("dockerd")
            )

    def stop(self) -> None:
        """Remove the plugin (a managed ``kuryr``, even disabled, hides the bare daemon from
        its dockerd) and start the bare daemon again."""
        if self.inspect() is not None:
            self.docker("rm", "--force", PLUGIN)
        (self.host.root / "plugin.sock").unlink(missing_ok=True)
        SimDaemon(self.host).start()
