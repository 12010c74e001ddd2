"""Does dockerd's per-network endpoint count survive concurrent removals on a driver?

``python -m bench.endpoint_drift DRIVER IPAM SUBNET [COUNT]`` (e.g. ``kuryr kuryr
10.250.10.0/24``, or ``bridge default 10.250.11.0/24`` as the reference): COUNT containers
started 8 at a time on a new network, removed with ``docker rm -f`` in groups of 10, 8 groups
at once (as the bench's scale phase empties a network), then ``docker network rm``. dockerd
20.10 refuses that last step with "has active endpoints" once its counter has drifted from the
endpoints it holds (docs/bench-runs.md); the network then stays until dockerd restarts.
"""

from __future__ import annotations

import sys

from bench.dockercli import container_names, docker, remove_containers, run_in_batches

IMAGE = "kuryr/busybox"
WIDTH = 8


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    driver, ipam, subnet = argv[:3]
    count = int(argv[3]) if len(argv) == 4 else 60
    network = f"drift-{driver}-{ipam}"
    made = docker(
        "network", "create", "-d", driver, "--ipam-driver", ipam, "--subnet", subnet, network
    )
    if not made.ok:
        print(f"network create failed: {made.error}", file=sys.stderr)
        return 1
    runs = [
        ["run", "-d", "--net", network, "--name", f"{network}-{i}", IMAGE, "sleep", "3600"]
        for i in range(count)
    ]
    started = sum(o.ok for o in run_in_batches(runs, WIDTH))
    removed = sum(o.ok for o in remove_containers(container_names(f"{network}-"), WIDTH))
    left = container_names(f"{network}-")
    gone = docker("network", "rm", network)
    print(f"{network}: {started} of {count} started, {removed} rm groups ok, {len(left)} left")
    print(f"docker network rm: {'ok' if gone.ok else gone.error}")
    return 0 if gone.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
