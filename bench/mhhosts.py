"""The stack's hosts as the multi-host phase sees them: ``kuryr stack hosts --json``, the
``kuryr stack`` commands that add and remove the simulated hosts (timed, as a user waits for
them), and each host's dockerd, through its CLI and its API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dockercli
from bench.dockercli import Outcome
from kuryr.backends import unixhttp
from kuryr.stack.daemon import executable

# Lines of a failed command's output kept in the results.
TAIL_LINES = 5


@dataclass(frozen=True)
class Host:
    """One host of ``kuryr stack hosts --json``: the machine's own, or a simulated one."""

    name: str
    docker_host: str
    main: bool
    pids: tuple[int, ...] = ()

    @property
    def socket(self) -> Path:
        return Path(self.docker_host.removeprefix("unix://"))

    def docker(self, *args: str, timeout: float = 120.0) -> Outcome:
        return dockercli.docker("-H", self.docker_host, *args, timeout=timeout)

    def inspect(self, container: str) -> dict[str, Any]:
        """dockerd's view of a container, from its API: no CLI start-up between ``docker run``
        returning and the readiness probe."""
        status, body = unixhttp.request(
            self.socket, "GET", f"/containers/{container}/json", timeout=10
        )
        if status != 200:
            raise RuntimeError(f"{self.name}: inspect {container}: HTTP {status}: {body[:200]!r}")
        info: dict[str, Any] = json.loads(body)
        return info

    def address(self, container: str, network: str) -> str:
        return str(self.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"])

    def pid_of(self, container: str) -> int:
        return int(self.inspect(container)["State"]["Pid"])

    def answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", timeout=30).ok


def parse(described: list[dict[str, Any]]) -> list[Host]:
    """The rows of ``kuryr stack hosts --json``, the machine's host first."""
    return [
        Host(
            name=str(row["name"]),
            docker_host=str(row["docker_host"]),
            main=bool(row.get("main")),
            pids=tuple(int(p) for p in row.get("pids", [])),
        )
        for row in described
    ]


def kuryr(*args: str, timeout: float = 600.0) -> Outcome:
    """``kuryr ARGS`` as the stack's own CLI (the venv's, so the daemons it (re)starts run the
    same code as the stack's), timed."""
    return dockercli.command((executable(), *args), timeout)


def command_row(outcome: Outcome) -> dict[str, Any]:
    """A ``kuryr`` command as the results keep it; a failed one with the end of its output."""
    done: dict[str, Any] = {
        "command": " ".join(["kuryr", *outcome.argv[1:]]),
        "seconds": round(outcome.elapsed, 2),
        "ok": outcome.ok,
    }
    if not outcome.ok:
        said = (outcome.stderr.strip() or outcome.stdout.strip()).splitlines()
        done["error"] = "\n".join(said[-TAIL_LINES:])
    return done


def describe() -> list[Host]:
    listed = kuryr("stack", "hosts", "--json", timeout=60)
    if not listed.ok:
        raise RuntimeError(f"kuryr stack hosts --json failed: {listed.stderr.strip()[-300:]}")
    return parse(json.loads(listed.stdout))
