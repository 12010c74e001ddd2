"""A container's Neutron port is ACTIVE within the stated bound after ``docker run`` returns.

The path of issue 17's failure, repeated: many sequential ``docker run -d`` / ``docker rm -f``
on one network per IPAM driver (Docker's own and Kuryr's), several lanes at once, so pool
ports and the VIFs kept on them come back container after container. Every container's port
must be ACTIVE in Neutron within ``[neutron] port_active_timeout`` of its ``docker run``
returning, and the daemon's own view (``kuryr port``) must come to say ACTIVE too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuryr import config as config_mod
from kuryr import pools_admin, port
from tests.conftest import StackFacts
from tests.e2e.helpers import IMAGE, DockerEnv, Neutron, docker, wait_for

pytestmark = pytest.mark.stack

STARTS = 200  # per IPAM driver
LANES = 4  # concurrent run/rm sequences per network


@dataclass(frozen=True)
class Daemon:
    """Where the stack's daemon answers, and the bound it states."""

    admin_socket: Path
    docker_socket: Path
    driver: str
    bound: float

    def ports(self, container: str) -> list[dict[str, str]]:
        answer = port.lookup(container, self.docker_socket, self.admin_socket, self.driver)
        return list(answer["ports"])


@dataclass(frozen=True)
class Start:
    container: str
    port_id: str
    active_after: float  # seconds from ``docker run`` returning to Neutron saying ACTIVE


@pytest.fixture
def daemon(stack: StackFacts) -> Daemon:
    config = config_mod.load(stack.layout.sub("kuryr.conf"))
    return Daemon(
        pools_admin.socket_path(config.state_dir),
        stack.docker_sock,
        config.socket.stem,
        config.neutron.port_active_timeout,
    )


def active_within(neutron: Neutron, port_id: str, since: float, bound: float) -> float:
    """Seconds from ``since`` until Neutron reports the port ACTIVE; fails past ``bound``."""
    while True:
        shown = neutron.show("ports", port_id)
        status = shown["status"] if shown else "gone"
        waited = time.monotonic() - since
        if status == "ACTIVE":
            return waited
        assert waited < bound, f"port {port_id} is {status} {waited:.1f}s after docker run"
        time.sleep(0.1)


def lane(
    daemon: Daemon, neutron: Neutron, network: str, names: list[str], keep_last: bool
) -> list[Start]:
    """``docker run -d`` then ``docker rm -f``, one container after the other."""
    starts = []
    for i, name in enumerate(names):
        docker("run", "-d", "--name", name, "--net", network, IMAGE, "sleep", "600")
        returned = time.monotonic()
        try:
            (ours,) = daemon.ports(name)
            waited = active_within(neutron, ours["port_id"], returned, daemon.bound)
            starts.append(Start(name, ours["port_id"], waited))
        finally:
            if not (keep_last and i == len(names) - 1):
                docker("rm", "-f", name)
    return starts


def run_lanes(
    env: DockerEnv, daemon: Daemon, neutron: Neutron, network: str
) -> tuple[list[Start], list[str]]:
    """STARTS containers over LANES lanes; returns the starts and the containers left
    running (each lane's last)."""
    names = [[f"{env.prefix}-l{k}-{i}" for i in range(STARTS // LANES)] for k in range(LANES)]
    for lane_names in names:
        env.defer(_remover(lane_names[-1]))
    with ThreadPoolExecutor(LANES) as pool:
        futures = [
            pool.submit(lane, daemon, neutron, network, lane_names, True) for lane_names in names
        ]
        starts = [s for f in futures for s in f.result()]
    return starts, [lane_names[-1] for lane_names in names]


def _remover(name: str) -> Callable[[], object]:
    return lambda: docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("ipam", ["docker", "kuryr"], ids=["docker-ipam", "kuryr-ipam"])
def test_every_port_goes_active_within_the_bound_vifs_reused(
    env: DockerEnv, daemon: Daemon, neutron: Neutron, ipam: str
) -> None:
    network = env.network(*(["--ipam-driver", "kuryr"] if ipam == "kuryr" else []))
    starts, running = run_lanes(env, daemon, neutron, network)

    assert len(starts) == STARTS
    # The path under test: ports (and their VIFs) came back from the pool to serve again.
    reused = len(starts) - len({s.port_id for s in starts})
    assert reused >= STARTS // 2, f"only {reused} of {STARTS} starts reused a pool port"

    # The daemon's own record comes to say ACTIVE too (it checks off the start path).
    for name in running:

        def daemon_says_active(container: str = name) -> bool:
            return [p["status"] for p in daemon.ports(container)] == ["ACTIVE"]

        wait_for(daemon_says_active, f"kuryr port {name} to show ACTIVE", daemon.bound)
