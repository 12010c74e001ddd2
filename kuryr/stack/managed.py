"""Kuryr as the stack's managed Docker plugin (``kuryr stack up --plugin``) instead of the
bare ``kuryr serve``.

The two never run together: both would serve this host's ports. Which one the stack runs
is kept in the stack directory (``kuryr-mode``), so a later plain ``up``, ``status`` or
``down`` deals with the same one; ``up --no-plugin`` goes back to the bare daemon. A
managed plugin named ``kuryr``, even disabled, hides the bare daemon's socket from Docker,
so going back removes it.

The plugin comes after dockerd in the stack's order (dockerd runs it). It is created from
the bundle of :mod:`kuryr.stack.plugin_build` and created again when the daemon's code, its
config.json or the stack's Kuryr config changed (a stamp records what the installed one was
made from); its mounts point at the stack's own files: the config directory ``plugin/etc``
and the bare daemon's state directory, so both modes share one state.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from kuryr.config import DEFAULT_CONFIG_FILE, Config
from kuryr.stack import plugin_build, plugin_config, proc
from kuryr.stack.daemon import PACKAGE, START_TIMEOUT, KuryrDaemon, activates
from kuryr.stack.docker import EXEC_ROOT, Docker, ping
from kuryr.stack.errors import StackError
from kuryr.stack.layout import DOCKER_SOCK, NEUTRON_URL, Layout, write_if_changed
from kuryr.stack.plugin_rootfs import BuildError

PLUGIN = "kuryr"
MODE_FILE = "kuryr-mode"
# The README's `docker plugin set kuryr KURYR_NEUTRON_...` line, word for word: the plugin's
# config file has no Neutron keys, so it reaches Neutron only if these settings work.
SETTINGS = ("KURYR_NEUTRON_AUTH_TYPE=none", f"KURYR_NEUTRON_ENDPOINT={NEUTRON_URL}")
DOCKER_TIMEOUT = 120.0


def plugin_mode(layout: Layout) -> bool:
    try:
        return layout.sub(MODE_FILE).read_text().strip() == "plugin"
    except FileNotFoundError:
        return False


def switch(layout: Layout, plugin: bool) -> None:
    """Make ``plugin`` the stack's mode, first stopping (or removing) the other Kuryr."""
    if plugin_mode(layout) == plugin:
        return
    if plugin:
        KuryrDaemon(layout).stop()
    else:
        # dockerd keeps an enabled plugin in its store and would run it on its next start.
        Docker(layout).start()
        KuryrPlugin(layout).remove()
    layout.create()
    layout.sub(MODE_FILE).write_text("plugin\n" if plugin else "bare\n")


def code_digest(package: Path = PACKAGE) -> str:
    """The daemon's code as it stands (the stack's own modules excluded, as for the bare
    daemon's staleness), with pyproject.toml."""
    digest = hashlib.sha256()
    stack = package / "stack"
    for path in sorted(package.rglob("*.py")):
        if stack not in path.parents:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    digest.update((package.parent / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def docker(*args: str, timeout: float = DOCKER_TIMEOUT) -> str:
    argv = ["docker", "-H", f"unix://{DOCKER_SOCK}", "plugin", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StackError(PLUGIN, f"{' '.join(argv[3:])} took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise StackError(PLUGIN, f"{' '.join(argv[3:])}: {said[-1] if said else 'failed'}")
    return done.stdout


class KuryrPlugin:
    name = KuryrDaemon.name

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.build_dir = layout.sub("plugin")
        self.config_dir = self.build_dir / "etc"
        self.stamp = self.build_dir / "installed.stamp"

    @property
    def log(self) -> Path:
        # dockerd logs what a plugin writes.
        return Docker(self.layout).log

    def config_text(self) -> str:
        """The stack's Kuryr config with the paths the plugin sees inside; its Neutron keys
        are the plugin's settings (SETTINGS), as the README's install shows."""
        return KuryrDaemon(self.layout).config_text(Config.socket, Config.state_dir, False)

    def wanted(self) -> str:
        """What the installed plugin must have been made from."""
        version = plugin_build.project_version(PACKAGE.parent / "pyproject.toml")
        parts = (code_digest(), plugin_config.render(version), self.config_text(), *SETTINGS)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def inspect(self) -> dict[str, Any] | None:
        try:
            found = json.loads(docker("inspect", PLUGIN))
        except StackError:
            return None
        return found[0] if found else None

    def socket(self, plugin_id: str) -> Path:
        return EXEC_ROOT / "plugins" / plugin_id / plugin_config.SOCKET_NAME

    def start(self) -> None:
        bare = KuryrDaemon(self.layout)
        bare.stop()
        write_if_changed(self.config_dir / DEFAULT_CONFIG_FILE.name, self.config_text())
        # The host's own config stays: kuryr status, pools, gc use it (the admin socket is in
        # the state directory both share).
        write_if_changed(bare.config, bare.config_text())
        bare.state_dir.mkdir(parents=True, exist_ok=True)
        wanted = self.wanted()
        installed = self.inspect()
        if installed is None or self._stamped() != f"{wanted} {installed['Id']}":
            installed = self._install(installed is not None)
            self.stamp.write_text(f"{wanted} {installed['Id']}\n")
        if not installed["Enabled"]:
            docker("enable", "--timeout", f"{START_TIMEOUT:.0f}", PLUGIN)
        sock = self.socket(installed["Id"])
        if not proc.wait_for(lambda: activates(sock)[0], START_TIMEOUT, 0.2):
            raise StackError(
                self.name,
                f"the managed plugin does not answer Plugin.Activate on {sock}: "
                f"{activates(sock)[1]}",
                self.log,
            )

    def _stamped(self) -> str:
        try:
            return self.stamp.read_text().strip()
        except FileNotFoundError:
            return ""

    def _install(self, replace: bool) -> dict[str, Any]:
        try:
            bundle = plugin_build.Builder(self.build_dir).build()
        except (BuildError, OSError) as exc:
            raise StackError(self.name, f"building the plugin: {exc}") from exc
        if replace:
            self.remove()
        docker("create", PLUGIN, str(bundle))
        state = KuryrDaemon(self.layout).state_dir
        docker("set", PLUGIN, f"config.source={self.config_dir}", f"state.source={state}")
        docker("set", PLUGIN, *SETTINGS)
        found = self.inspect()
        if found is None:
            raise StackError(self.name, f"docker plugin create {PLUGIN} made no plugin")
        return found

    def remove(self) -> None:
        """Disable and remove the plugin, if dockerd has one."""
        if ping() and self.inspect() is not None:
            docker("rm", "--force", PLUGIN)
        self.stamp.unlink(missing_ok=True)

    def stop(self) -> None:
        """Disable it (dockerd then stops it); it stays installed for the next up."""
        if not ping():
            return
        found = self.inspect()
        if found is not None and found["Enabled"]:
            docker("disable", "--force", PLUGIN)

    def check(self) -> tuple[bool, str]:
        if not ping():
            return False, f"dockerd does not answer on {DOCKER_SOCK}"
        found = self.inspect()
        if found is None:
            return False, f"no managed plugin {PLUGIN}"
        if not found["Enabled"]:
            return False, f"the managed plugin {found['Name']} is disabled"
        sock = self.socket(found["Id"])
        ok, detail = activates(sock)
        what = f"managed plugin {found['Name']} ({found['Id'][:12]}), unix://{sock}"
        return ok, f"{what} answers Plugin.Activate" if ok else detail

    def purge(self) -> None:
        """Its bundle and config live in the stack directory, its copy in dockerd's."""
