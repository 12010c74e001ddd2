"""The stack's Kuryr daemon (``kuryr serve``): found by the stack's pidfile, and restarted
with a copy of its config whose ``[neutron] endpoint`` points at the counting proxy for the
counting phase, then restarted as it was."""

from __future__ import annotations

import configparser
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import procs
from kuryr import config
from kuryr.stack.daemon import activates
from kuryr.stack.layout import PLUGIN_SOCK, Layout

MARKER = "serve"


@dataclass(frozen=True)
class Launch:
    """How the running daemon was started, so it can be started again just the same."""

    argv: list[str]
    env: dict[str, str]

    def config_file(self) -> Path | None:
        for i, arg in enumerate(self.argv[:-1]):
            if arg in ("--config-file", "--config"):
                return Path(self.argv[i + 1])
        return None

    def with_config(self, path: Path) -> Launch:
        argv = list(self.argv)
        for i, arg in enumerate(argv[:-1]):
            if arg in ("--config-file", "--config"):
                argv[i + 1] = str(path)
        return Launch(argv, self.env)


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def write_config_copy(
    original: Path, settings: dict[tuple[str, str], str], config_copy: Path
) -> None:
    """A copy of the daemon config ``original`` where each (section, key) of ``settings``
    has its value."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(original)
    for (section, key), value in settings.items():
        if section != parser.default_section and not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, value)
    with open(config_copy, "w") as out:
        parser.write(out)


class OurDaemon:
    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout or Layout.resolve(None)
        self.pidfile = self.layout.pidfile("kuryr")
        self.log = self.layout.log("kuryr")

    def pid(self) -> int | None:
        return procs.running(self.pidfile, MARKER)

    def launch(self) -> Launch | None:
        pid = self.pid()
        if pid is None:
            return None
        return Launch(procs.argv(pid), _environ(pid))

    def measured_config(self) -> dict[str, Any] | None:
        """The running daemon's effective pool, reconciliation and request settings (its
        config file read as the daemon reads it, defaults included); None when it does
        not run or runs without a config file."""
        launch = self.launch()
        path = launch.config_file() if launch is not None else None
        if path is None:
            return None
        loaded = config.load(path)
        return {
            "config_file": str(path),
            "request_timeout": loaded.request_timeout,
            "pool": asdict(loaded.pool),
            "reconcile": asdict(loaded.reconcile),
        }

    def _respawn(self, launch: Launch) -> int:
        pid = self.pid()
        if pid is not None:
            procs.terminate(pid)
        PLUGIN_SOCK.unlink(missing_ok=True)
        new = procs.spawn(launch.argv, self.log, self.pidfile, launch.env)
        if not procs.wait_for(lambda: activates()[0] or not procs.alive(new), 30):
            raise RuntimeError(f"kuryr serve did not come back; see {self.log}")
        if not procs.alive(new):
            raise RuntimeError(f"kuryr serve exited at start; see {self.log}")
        return new

    def restart_through(self, launch: Launch, endpoint: str, config_copy: Path) -> int:
        """Restart with ``[neutron] endpoint = endpoint``; returns the new PID."""
        return self.restart_with(launch, {("neutron", "endpoint"): endpoint}, config_copy)

    def restart_with(
        self, launch: Launch, settings: dict[tuple[str, str], str], config_copy: Path
    ) -> int:
        """Restart with a copy of its config where each (section, key) of ``settings`` has
        its value; returns the new PID."""
        original = launch.config_file()
        if original is None:
            raise RuntimeError(f"kuryr serve runs without --config-file: {launch.argv}")
        write_config_copy(original, settings, config_copy)
        return self._respawn(launch.with_config(config_copy))

    def restore(self, launch: Launch) -> int:
        return self._respawn(launch)
