"""A server process on a loopback port whose workers may outlive it (neutron-server, Keystone
under uwsgi): started again when its config changed, its orphaned workers found by the
config path in their argv, refused when another process holds the port, and waited for until
it answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kuryr.stack import ports, proc
from kuryr.stack.errors import StackError

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class HttpService:
    name: str  # the stack component's, for its errors
    program: str  # what the error says exited during start
    pidfile: Path
    marker: str  # in the process's argv: a pidfile's pid still ours
    config: Path  # in every worker's argv: workers a killed master left behind
    port: int
    url: str
    log: Path
    answers: Callable[[], bool]

    def start(self, argv: Sequence[str], stdout: Path, restart: bool) -> None:
        """Running and answering; ``restart``: its config changed since it was started."""
        pid = proc.running(self.pidfile, self.marker)
        if pid is not None and restart:
            proc.terminate(pid)
            pid = None
        if pid is None:
            self._stop_orphans()
            owner = ports.listener(self.port)
            if owner is not None:
                raise StackError(
                    self.name, f"port {self.port} is taken by {ports.describe(owner)}", self.log
                )
            pid = proc.spawn(list(argv), stdout, self.pidfile)
        started = pid

        def ready() -> bool:
            if not proc.alive(started):
                raise StackError(self.name, f"{self.program} exited during start", self.log)
            return self.answers()

        if not proc.wait_for(ready, START_TIMEOUT, 0.25):
            raise StackError(
                self.name, f"no answer on {self.url} after {START_TIMEOUT:.0f} s", self.log
            )

    def stop(self) -> None:
        proc.stop_pidfile(self.pidfile, self.marker, timeout=STOP_TIMEOUT)
        self._stop_orphans()

    def _stop_orphans(self) -> None:
        for pid in proc.find(str(self.config)):
            proc.terminate(pid)
