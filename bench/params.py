"""A run's parameters: its command line and the fixed thresholds it waits on. They are kept
in the results, and the report's method text is written from them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# The machine is idle once its CPUs were this idle over one window (at most LIMIT waited).
IDLE_FRACTION = 0.8
IDLE_WINDOW_S = 1.0
IDLE_LIMIT_S = 120.0
# A daemon is quiet once it made no Neutron call for this long after the command returned.
QUIET_GAP_S = 2.0
QUIET_MAX_S = 15.0
PROXY_PORTS = {"kuryrlib": 19696, "kuryr": 19697}
# How often the bookkeeping lag phase lists a network's ports in Neutron.
LAG_POLL_S = 0.02


@dataclass(frozen=True)
class Parameters:
    runs: int = 20
    warmup: int = 2
    net_reps: int = 5
    parallel: int = 20
    parallel_reps: int = 3
    scale: tuple[int, ...] = (10, 200)
    scale_probes: int = 10
    fill_width: int = 8
    fill_budget_s: float = 240.0
    count_reps: int = 10
    lag_single: int = 20
    lag_burst: int = 20
    multihost: bool = True
    nested: bool = True
    lag_poll_s: float = LAG_POLL_S
    idle_fraction: float = IDLE_FRACTION
    idle_window_s: float = IDLE_WINDOW_S
    idle_limit_s: float = IDLE_LIMIT_S
    quiet_gap_s: float = QUIET_GAP_S
    quiet_max_s: float = QUIET_MAX_S
    proxy_ports: dict[str, int] = field(default_factory=lambda: dict(PROXY_PORTS))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scale"] = list(self.scale)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Parameters:
        """The parameters a run recorded; keys it did not record keep this code's default."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        if "scale" in values:
            values["scale"] = tuple(int(s) for s in values["scale"])
        return cls(**values)


DEFAULTS = Parameters()


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of counts: {text}") from exc
    if not sizes or any(s <= 0 for s in sizes) or list(sizes) != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(f"counts must be positive and increasing: {text}")
    return sizes


def parse_args(argv: Sequence[str] | None, doc: str | None = None) -> argparse.Namespace:
    d = DEFAULTS
    parser = argparse.ArgumentParser(prog="python -m bench", description=doc)
    parser.add_argument("--runs", type=int, default=d.runs, help="docker run --rm per driver")
    parser.add_argument("--warmup", type=int, default=d.warmup)
    parser.add_argument(
        "--net-reps", type=int, default=d.net_reps, help="network create/rm per driver"
    )
    parser.add_argument("--parallel", type=int, default=d.parallel)
    parser.add_argument(
        "--parallel-reps", type=int, default=d.parallel_reps, help="bursts per driver"
    )
    parser.add_argument(
        "--scale",
        type=_sizes,
        default=d.scale,
        help="endpoint counts, comma-separated, increasing",
    )
    parser.add_argument("--scale-probes", type=int, default=d.scale_probes)
    parser.add_argument(
        "--fill-width", type=int, default=d.fill_width, help="parallel fills at scale"
    )
    parser.add_argument(
        "--fill-budget", type=float, default=d.fill_budget_s, help="seconds of filling per driver"
    )
    parser.add_argument(
        "--count-reps",
        type=int,
        default=d.count_reps,
        help="repetitions of each operation whose Neutron calls are counted",
    )
    parser.add_argument(
        "--lag-single", type=int, default=d.lag_single, help="bookkeeping lag: one at a time"
    )
    parser.add_argument(
        "--lag-burst", type=int, default=d.lag_burst, help="bookkeeping lag: started at once"
    )
    parser.add_argument(
        "--no-multihost",
        dest="multihost",
        action="store_false",
        help="skip the multi-host phase (python -m bench.multihost runs it alone)",
    )
    parser.add_argument(
        "--no-nested",
        dest="nested",
        action="store_false",
        help="skip the nested phase (python -m bench.nested runs it alone)",
    )
    parser.add_argument("--only", default="", help="driver keys to run, comma-separated")
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    return parser.parse_args(argv)


def of(args: argparse.Namespace) -> Parameters:
    return Parameters(
        runs=args.runs,
        warmup=args.warmup,
        net_reps=args.net_reps,
        parallel=args.parallel,
        parallel_reps=args.parallel_reps,
        scale=tuple(args.scale),
        scale_probes=args.scale_probes,
        fill_width=args.fill_width,
        fill_budget_s=args.fill_budget,
        count_reps=args.count_reps,
        lag_single=args.lag_single,
        lag_burst=args.lag_burst,
        multihost=args.multihost,
        nested=args.nested,
    )
