"""A host held busy for the multi-host phase: many running containers started on it, several
``docker run`` at a time (as bench.scenarios fills a network at scale), and removed again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.dockercli import IMAGE, Outcome, run_in_batches
from bench.mhhosts import Host

SLEEPER = ("sleep", "3600")
# Names removed by one `docker rm -f`.
RM_CHUNK = 10


def sleepers(host: Host, network: str, names: Sequence[str]) -> list[list[str]]:
    return [
        ["-H", host.docker_host, "run", "-d", "--name", name, "--net", network, IMAGE, *SLEEPER]
        for name in names
    ]


def removals(host: Host, names: Sequence[str]) -> list[list[str]]:
    chunks = [names[i : i + RM_CHUNK] for i in range(0, len(names), RM_CHUNK)]
    return [["-H", host.docker_host, "rm", "-f", *chunk] for chunk in chunks]


def fill(host: Host, network: str, names: Sequence[str], width: int) -> list[Outcome]:
    return run_in_batches(sleepers(host, network, names), width)


def empty(host: Host, names: Sequence[str], width: int) -> list[Outcome]:
    return run_in_batches(removals(host, names), width)


def started(names: Sequence[str], outcomes: Sequence[Outcome]) -> list[str]:
    """The names whose ``docker run -d`` succeeded (outcomes in the order of ``names``)."""
    return [name for name, outcome in zip(names, outcomes, strict=True) if outcome.ok]


def fill_row(names: Sequence[str], outcomes: Sequence[Outcome], seconds: float) -> dict[str, Any]:
    errors = sorted({o.error for o in outcomes if not o.ok})
    return {
        "asked": len(names),
        "running": len(started(names, outcomes)),
        "seconds": round(seconds, 1),
        "errors": sum(not o.ok for o in outcomes),
        "error_examples": errors[:3],
    }
