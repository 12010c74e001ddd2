"""The measured scenarios. Each takes the drivers to compare and returns plain data (lists,
dicts, numbers) that goes into the JSON file unchanged."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.dockercli import (
    IMAGE,
    PREFIX,
    Outcome,
    docker,
    remove_containers,
    run_in_batches,
    run_many,
)
from bench.drivers import Driver
from bench.machine import wait_idle
from bench.stats import Summary

# How many error messages of one kind are kept in the results, to stay readable.
MAX_ERRORS = 3


def _timings(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    samples = [o.elapsed for o in outcomes if o.ok]
    errors = [o.error for o in outcomes if not o.ok]
    return {
        "samples": samples,
        "summary": Summary.of(samples).as_dict() if samples else None,
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:MAX_ERRORS],
    }


def run_rm(driver: Driver, network: str | None = None) -> Outcome:
    return docker("run", "--rm", driver.net_arg(network), IMAGE, "true")


def start_latency(drivers: Sequence[Driver], runs: int, warmup: int) -> dict[str, Any]:
    """``docker run --rm IMAGE true``, interleaved A B C ... A B C after ``warmup`` rounds."""
    for _ in range(warmup):
        for driver in drivers:
            run_rm(driver)
    outcomes: dict[str, list[Outcome]] = {d.key: [] for d in drivers}
    for _ in range(runs):
        for driver in drivers:
            outcomes[driver.key].append(run_rm(driver))
    return {key: _timings(done) for key, done in outcomes.items()}


def network_lifecycle(drivers: Sequence[Driver], reps: int) -> dict[str, Any]:
    """``docker network create`` then ``rm``, interleaved across drivers."""
    created: dict[str, list[Outcome]] = {}
    removed: dict[str, list[Outcome]] = {}
    for rep in range(1, reps + 1):
        for driver in drivers:
            name = f"{PREFIX}nc-{driver.key}-{rep}"
            command = driver.create_command(name, index=rep)
            if command is None:
                continue
            made = docker(*command)
            created.setdefault(driver.key, []).append(made)
            if made.ok:
                removed.setdefault(driver.key, []).append(docker("network", "rm", name))
    return {
        key: {"create": _timings(created[key]), "rm": _timings(removed.get(key, []))}
        for key in created
    }


def _sleepers(driver: Driver, names: Sequence[str]) -> list[list[str]]:
    return [
        ["run", "-d", "--name", name, driver.net_arg(), IMAGE, "sleep", "86400"] for name in names
    ]


def _wall(outcomes: Sequence[Outcome]) -> float:
    return max(o.returned for o in outcomes) - min(o.started for o in outcomes)


def parallel_starts(drivers: Sequence[Driver], count: int, reps: int) -> dict[str, Any]:
    """``count`` ``docker run -d`` at once per driver, ``reps`` rounds interleaved across the
    drivers, each burst from an idle machine: median wall time and errors; after each burst
    the same containers are removed at once."""
    started: dict[str, list[list[Outcome]]] = {d.key: [] for d in drivers}
    removed: dict[str, list[list[Outcome]]] = {d.key: [] for d in drivers}
    for rep in range(reps):
        for driver in drivers:
            wait_idle()
            names = [f"{PREFIX}par-{driver.key}-{rep}-{i}" for i in range(count)]
            started[driver.key].append(run_many(_sleepers(driver, names)))
            removed[driver.key].append(run_many([["rm", "-f", name] for name in names]))
    results: dict[str, Any] = {}
    for key, bursts in started.items():
        every = [o for burst in bursts for o in burst]
        errors = [o.error for o in every if not o.ok]
        walls = [_wall(burst) for burst in bursts]
        rm_walls = [_wall(burst) for burst in removed[key]]
        results[key] = {
            "count": count,
            "walls_s": walls,
            "wall_s": statistics.median(walls),
            "each": _timings(every)["summary"],
            "errors": len(errors),
            "error_examples": sorted(set(errors))[:MAX_ERRORS],
            "rm_wall_s": statistics.median(rm_walls),
            "rm_errors": sum(not o.ok for burst in removed[key] for o in burst),
        }
    return results


def _affordable(held: int, target: int, per_container_s: float | None, left_s: float) -> int:
    """How many containers the network can hold by the end of the fill budget, at the
    rate the previous step was filled (the reference driver fills at seconds per start)."""
    if per_container_s is None or per_container_s <= 0:
        return target
    return min(target, held + int(max(0.0, left_s) / per_container_s))


def scale(
    drivers: Sequence[Driver],
    sizes: Sequence[int],
    probes: int,
    fill_width: int,
    fill_budget_s: float,
    at_top: Callable[[Driver], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Start latency on a network already holding each of ``sizes`` running containers:
    probed right after filling, and again once the machine is idle (the daemons' work left
    by the fill, such as pool refills and bookkeeping, is done), which is the figure compared.

    Filling stops growing a network once ``fill_budget_s`` of filling would be exceeded;
    the step then records how many it reached and why. ``at_top(driver)`` measures what it
    likes while the last step's containers still run (kept as ``at_top``)."""
    results: dict[str, Any] = {}
    for driver in drivers:
        if driver.create_args is None:
            continue
        wait_idle()
        held: list[str] = []
        steps: list[dict[str, Any]] = []
        per_container_s: float | None = None
        deadline = time.time() + fill_budget_s
        for target in sizes:
            size = _affordable(len(held), target, per_container_s, deadline - time.time())
            if size <= len(held):
                steps.append({"target": target, "skipped": _budget_note(per_container_s)})
                break
            names = [f"{PREFIX}sc-{driver.key}-{i}" for i in range(len(held), size)]
            fill_started = time.time()
            filled = run_in_batches(_sleepers(driver, names), fill_width)
            fill_s = time.time() - fill_started
            per_container_s = fill_s / len(names)
            held.extend(o.argv[4] for o in filled if o.ok)
            step: dict[str, Any] = {
                "endpoints": len(held),
                "target": target,
                "fill_s": fill_s,
                "fill_errors": sum(not o.ok for o in filled),
                "fill_error_examples": sorted({o.error for o in filled if not o.ok})[:MAX_ERRORS],
                "start_after_fill": _timings([run_rm(driver) for _ in range(probes)]),
                "settle_s": wait_idle(),
                "start": _timings([run_rm(driver) for _ in range(probes)]),
            }
            if size < target:
                step["limited"] = _budget_note(per_container_s)
            steps.append(step)
            if len(held) < size:
                break
        top = at_top(driver) if at_top is not None else None
        rm_started = time.time()
        remove_containers(held)
        results[driver.key] = {"steps": steps, "cleanup_s": time.time() - rm_started}
        if top is not None:
            results[driver.key]["at_top"] = top
    return results


def _budget_note(per_container_s: float | None) -> str:
    rate = "n/a" if per_container_s is None else f"{per_container_s:.2f} s"
    return f"fill time budget reached (filling took {rate} per container)"


def connectivity(driver: Driver) -> dict[str, Any]:
    """One container pings another on the driver's network: the rows only mean something
    for networks that really carry traffic."""
    name = f"{PREFIX}ping-{driver.key}"
    server = docker("run", "-d", "--name", name, driver.net_arg(), IMAGE, "sleep", "600")
    if not server.ok:
        return {"ok": False, "error": server.error}
    try:
        address = docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
        ).stdout.strip()
        ping = docker("run", "--rm", driver.net_arg(), IMAGE, "ping", "-c", "2", "-W", "3", address)
        result: dict[str, Any] = {"ok": ping.ok, "target": address}
        if not ping.ok:
            output = ping.stdout.strip().splitlines()
            result["error"] = ping.error if ping.stderr.strip() else " / ".join(output[-2:])
        return result
    finally:
        docker("rm", "-f", name)
