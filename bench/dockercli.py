"""The docker command line, timed: the bench measures what a user waits for."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

IMAGE = "kuryr/busybox"
PREFIX = "bench-"
DOCKER = "docker"


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    started: float
    returned: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def elapsed(self) -> float:
        return self.returned - self.started

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def error(self) -> str:
        """Docker's reason: the first line of stderr that is neither a usage hint nor a
        warning (dockerd without IP forwarding warns on every run)."""
        for line in self.stderr.splitlines():
            text = line.strip()
            if text and not text.startswith(("Run '", "See '", "WARNING:")):
                return text
        return f"exit status {self.returncode}"


def docker(*args: str, timeout: float = 300.0) -> Outcome:
    return command((DOCKER, *args), timeout)


def command(argv: tuple[str, ...], timeout: float) -> Outcome:
    """Run ``argv`` to its end (or ``timeout``), timed."""
    started = time.time()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(argv, started, time.time(), -1, "", f"timed out after {timeout:.0f} s")
    return Outcome(argv, started, time.time(), done.returncode, done.stdout, done.stderr)


def run_many(commands: Sequence[Sequence[str]], timeout: float = 300.0) -> list[Outcome]:
    """Start every docker command at once and wait for all of them."""
    started = time.time()
    children = [
        (
            tuple(cmd),
            subprocess.Popen(
                [DOCKER, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )
        for cmd in commands
    ]
    outcomes: list[Outcome] = []
    for cmd, child in children:
        try:
            out, err = child.communicate(timeout=max(1.0, started + timeout - time.time()))
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            err = f"{err}\ntimed out after {timeout:.0f} s"
        outcomes.append(Outcome((DOCKER, *cmd), started, time.time(), child.returncode, out, err))
    return outcomes


def run_in_batches(
    commands: Sequence[Sequence[str]], width: int, timeout: float = 300.0
) -> list[Outcome]:
    """Run commands ``width`` at a time (filling a network without overloading Neutron)."""
    outcomes: list[Outcome] = []
    for i in range(0, len(commands), width):
        outcomes.extend(run_many(commands[i : i + width], timeout))
    return outcomes


def container_names(prefix: str = PREFIX) -> list[str]:
    listed = docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}")
    return [n for n in listed.stdout.split() if n.startswith(prefix)]


def network_names(prefix: str = PREFIX) -> list[str]:
    listed = docker("network", "ls", "--filter", f"name={prefix}", "--format", "{{.Name}}")
    return [n for n in listed.stdout.split() if n.startswith(prefix)]


def network_missing(name: str) -> bool | None:
    """True when dockerd says the network does not exist, False when it does, None when
    dockerd gave no clear answer."""
    answer = docker("network", "inspect", "--format", "{{.Name}}", name, timeout=30)
    if answer.ok:
        return False
    if "no such network" in answer.stderr.lower() or "not found" in answer.stderr.lower():
        return True
    return None


def remove_containers(containers: Sequence[str], width: int = 8) -> list[Outcome]:
    chunks = [list(containers[i : i + 10]) for i in range(0, len(containers), 10)]
    return run_in_batches([["rm", "-f", *chunk] for chunk in chunks], width)


def cleanup(prefix: str = PREFIX) -> None:
    """Remove every container and network the bench may have left behind."""
    remove_containers(container_names(prefix))
    for network in network_names(prefix):
        docker("network", "rm", network)


def version() -> dict[str, str]:
    server = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    client = docker("version", "--format", "{{.Client.Version}}").stdout.strip()
    return {"docker_server": server, "docker_client": client}
