"""A private ``kuryr serve`` for one test: its own socket, state directory, config and log.

It talks to the shared stack's Neutron and OVSDB like the stack's daemon does, but dockerd
never sees it, so a test may fuzz it, break its config or read its whole log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kuryr.stack import daemon, proc

KURYR = Path(sys.executable).with_name("kuryr")
START_TIMEOUT = 30.0


@dataclass
class PrivateDaemon:
    process: subprocess.Popen[bytes]
    socket: Path
    log: Path
    root: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def admin_socket(self) -> Path:
        return self.root / "state" / "admin.sock"


def noauth_neutron() -> str:
    from kuryr.stack.layout import NEUTRON_URL

    return f"[neutron]\nauth_type = none\nendpoint = {NEUTRON_URL}\n"


@contextmanager
def private_daemon(
    neutron_section: str = "",
    extra_default: str = "",
    extra_sections: str = "",
    host: str = "",
    env: Mapping[str, str] | None = None,
) -> Iterator[PrivateDaemon]:
    """Start ``kuryr serve`` and yield it once its socket answers; kill it at the end.
    ``extra_sections``: whole config sections (``[pool]`` ...) appended to the file;
    ``host``: its ``[binding] host`` (default: this machine's chassis, as the stack's daemon);
    ``env``: variables added to its environment (``OS_*``, ``OS_CLIENT_CONFIG_FILE``)."""
    from kuryr.stack.ovs import hostname

    with tempfile.TemporaryDirectory(prefix="rel-daemon-") as tmp:
        root = Path(tmp)
        sock, log = root / "plugins" / "kuryr.sock", root / "serve.log"
        (root / "kuryr.conf").write_text(
            f"[DEFAULT]\ndebug = true\nsocket = {sock}\nstate_dir = {root / 'state'}\n"
            f"{extra_default}\n"
            f"{neutron_section or noauth_neutron()}\n"
            f"[binding]\nhost = {host or hostname()}\n"
            f"{extra_sections}"
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(KURYR), "--config-file", str(root / "kuryr.conf"), "serve"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        try:
            answers = daemon.child_answers(sock, process, START_TIMEOUT)
            assert answers, "the daemon never answered\n" + log.read_text()
            yield PrivateDaemon(process, sock, log, root)
        finally:
            proc.stop_child(process, timeout=30)
