"""The network create/rm phase alone (bench.scenarios.network_lifecycle) for Kuryr's two
drivers against the stack's running daemon: ``python -m bench.lifecycle [REPS] [PREFIX]``
prints the timings as JSON. Names carry PREFIX (default ``bench-``), so a helper sharing the
stack keeps to its own."""

from __future__ import annotations

import json
import sys

from bench import scenarios
from bench.drivers import KURYR, KURYR_DOCKER_IPAM


def main(argv: list[str]) -> None:
    reps = int(argv[0]) if argv else 10
    if len(argv) > 1:
        scenarios.PREFIX = argv[1]
    result = scenarios.network_lifecycle([KURYR, KURYR_DOCKER_IPAM], reps)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
