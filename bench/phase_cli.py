"""The command line of a bench phase run alone (``python -m bench.multihost``,
``python -m bench.nested``): the phase's Settings as options, its raw results written, then
its section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench import neutron

REPO = Path(__file__).resolve().parent.parent


def parse_args(
    name: str, doc: str | None, settings: type[Any], argv: Sequence[str] | None
) -> argparse.Namespace:
    """``--<field>`` for each field of the ``settings`` dataclass, ``--docs``, ``--results``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in fields(settings):
        option = "--" + f.name.replace("_", "-")
        kind = float if isinstance(f.default, float) else int
        parser.add_argument(option, type=kind, default=f.default)
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    return parser.parse_args(argv)


def main(
    name: str,
    args: argparse.Namespace,
    settings: type[Any],
    measure: Callable[[Any], dict[str, Any]],
    write: Callable[[dict[str, Any], Path], None],
) -> int:
    """Measure with the options' settings, keep the raw results in ``<results>/<name>.json``
    and, when the phase did not fail, write its report under ``--docs``."""

    def say(text: str) -> None:
        print(f"bench.{name}: {text}", flush=True)

    if not neutron.answers():
        raise SystemExit(f"bench.{name}: Neutron does not answer on 127.0.0.1:9696")
    measured = measure(settings(**{f.name: getattr(args, f.name) for f in fields(settings)}))
    args.results.mkdir(parents=True, exist_ok=True)
    raw = args.results / f"{name}.json"
    raw.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    if "error" in measured:
        say(f"no report written (raw results in {raw})")
        return 1
    write(measured, args.docs)
    say(f"took {measured['duration_s']} s; wrote {args.docs / 'benchmarks.md'} and .json")
    return 0
