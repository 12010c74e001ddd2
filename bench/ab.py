"""Two Kuryr checkouts measured in turns on the one stack, to tell whether a change made the
bench's ratios worse: ``python -m bench.ab OTHER_CHECKOUT [--other-pool min=20,max=40]
[--this-pool initial=20]``.

Each round restarts the stack's daemon on one side's code (this checkout, or OTHER_CHECKOUT
put first on PYTHONPATH: the same venv and dependencies), with a fresh state directory of its
own and the stack's config (``--other-pool`` overrides ``[pool]`` keys on the other side, as
its own stack wrote them; ``--this-pool`` on this side, to compare the code on like pools).
It makes the bench's networks (Docker bridge, Kuryr with each IPAM), measures ``docker run
--rm`` interleaved across them, then the ``--parallel``-at-once burst, and optionally the
scale steps, as ``make bench`` does (bench.scenarios); removes its networks with that daemon,
waits for the machine to be idle, and hands over. Rounds go other, this, this, other, ... so
a drift of the machine falls on both sides alike. The stack's daemon is put back as it was at
the end.

The ratios (each Kuryr network's median against the bridge's of the same round) and the raw
samples go to ``--out`` as JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import dockercli, machine, scenarios, stats
from bench.drivers import BRIDGE, KURYR, KURYR_DOCKER_IPAM, Driver
from bench.ourdaemon import Launch, OurDaemon
from bench.params import REPO

DRIVERS = (BRIDGE, KURYR, KURYR_DOCKER_IPAM)
THIS, OTHER = "this", "other"


def _order(rounds: int) -> list[str]:
    """other, this, this, other, other, this, ...: each side first as often as second."""
    pairs = [(OTHER, THIS) if i % 2 == 0 else (THIS, OTHER) for i in range(rounds)]
    return [side for pair in pairs for side in pair]


def _pool_overrides(text: str) -> dict[tuple[str, str], str]:
    items = (item.partition("=") for item in text.split(",") if item)
    return {("pool", key.strip()): value.strip() for key, _, value in items}


def _launch(base: Launch, side: str, other: Path) -> Launch:
    if side == THIS:
        return base
    env = dict(base.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(other), env.get("PYTHONPATH")) if p)
    return Launch(base.argv, env)


def _median(result: dict[str, Any]) -> float | None:
    summary = result.get("summary")
    return None if summary is None else float(summary["median"])


def _ratios(medians: dict[str, float | None]) -> dict[str, float | None]:
    bridge = medians.get(BRIDGE.key)
    ratios = {key: stats.ratio(value, bridge) for key, value in medians.items()}
    return {
        key: None if r is None else round(r, 3) for key, r in ratios.items() if key != BRIDGE.key
    }


def _round_drivers(index: int) -> list[Driver]:
    """The drivers under names and subnets of their own for round ``index``: dockerd 20.10
    can refuse to remove a network whose containers were removed at once ("has active
    endpoints", its endpoint count drifted), and the next round must not need that name."""
    return [dataclasses.replace(d, key=f"{d.key}-{index}") for d in DRIVERS]


def _by_driver(results: dict[str, Any], drivers: Sequence[Driver]) -> dict[str, Any]:
    return {base.key: results[d.key] for base, d in zip(DRIVERS, drivers, strict=True)}


def _round(args: argparse.Namespace, index: int) -> dict[str, Any]:
    drivers = _round_drivers(index)
    dockercli.cleanup()
    for driver in drivers:
        command = driver.create_command(driver.network, index)
        if command is not None:
            made = dockercli.docker(*command)
            if not made.ok:
                raise SystemExit(f"bench.ab: {driver.key}: {made.error}")
    try:
        latency = _by_driver(scenarios.start_latency(drivers, args.runs, args.warmup), drivers)
        burst = _by_driver(
            scenarios.parallel_starts(drivers, args.parallel, args.parallel_reps), drivers
        )
        scale = (
            _by_driver(
                scenarios.scale(drivers, args.scale, args.scale_probes, 8, args.fill_budget),
                drivers,
            )
            if args.scale
            else None
        )
    finally:
        dockercli.cleanup()
        for driver in drivers:
            if driver.create_args is not None:
                dockercli.docker("network", "rm", driver.network)
    run_rm = {key: _median(result) for key, result in latency.items()}
    bursts = {key: result.get("wall_s") for key, result in burst.items()}
    return {
        "run_rm_median_s": run_rm,
        "run_rm_ratio": _ratios(run_rm),
        "burst_wall_median_s": bursts,
        "burst_ratio": _ratios(bursts),
        "start_latency": latency,
        "parallel": burst,
        "scale": scale,
    }


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("other", type=Path, help="the other Kuryr checkout")
    parser.add_argument("--other-pool", default="", help="[pool] keys for the other side")
    parser.add_argument("--this-pool", default="", help="[pool] keys for this side")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of rounds")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--parallel-reps", type=int, default=3)
    parser.add_argument("--scale", type=_sizes, default=(), help="e.g. 10,200 (none: skipped)")
    parser.add_argument("--scale-probes", type=int, default=10)
    parser.add_argument("--fill-budget", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ab.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ours = OurDaemon()
    base = ours.launch()
    config = base.config_file() if base is not None else None
    if base is None or config is None:
        raise SystemExit("bench.ab: the stack's Kuryr daemon does not run: `kuryr stack up`")
    overrides = {THIS: _pool_overrides(args.this_pool), OTHER: _pool_overrides(args.other_pool)}
    rounds: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="kuryr-ab-"))
    try:
        for i, side in enumerate(_order(args.rounds)):
            state = work / f"{i}-{side}"
            state.mkdir()
            settings = {("DEFAULT", "state_dir"): str(state / "state"), **overrides[side]}
            ours.restart_with(_launch(base, side, args.other), settings, state / "kuryr.conf")
            print(f"bench.ab: round {i + 1}: {side}", flush=True)
            measured = _round(args, i)
            machine.wait_idle()
            rounds.append({"side": side, **measured})
            print(
                f"bench.ab: {side}: run --rm {measured['run_rm_ratio']}, "
                f"burst {measured['burst_ratio']}",
                flush=True,
            )
    finally:
        ours.restore(base)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = {
            "other": str(args.other),
            "other_pool": args.other_pool,
            "this_pool": args.this_pool,
            "rounds": rounds,
        }
        args.out.write_text(json.dumps(text, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
