"""A container's Neutron port is ACTIVE within the stated bound after ``docker run`` returns.

The path of issue 17's failure, repeated: many sequential ``docker run -d`` / ``docker rm -f``
on one network per IPAM driver (Docker's own and Kuryr's), several lanes at once, so pool
ports and the VIFs kept on them come back container after container. Every container's port
must be ACTIVE in Neutron within ``[neutron] port_active_timeout`` of its ``docker run``
returning, and the daemon's own view (``kuryr port``) must come to say ACTIVE too.

And the daemon keeps it so: a running container's VIF that OVN no longer binds (its OVS
interface lost the iface-id) is noticed, logged with the reason, and re-attached.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuryr import config as config_mod
from kuryr.backends.binding.base import host_ifname
from kuryr.domain.ports import status as port_status
from kuryr.ops import admin_api, port
from tests.conftest import StackFacts
from tests.e2e.helpers import IMAGE, SETTLE_TIMEOUT, DockerEnv, Neutron, docker, run, wait_for

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
    log: Path

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
        admin_api.socket_path(config.state_dir),
        stack.docker_sock,
        config.socket.stem,
        config.neutron.port_active_timeout,
        stack.layout.log("kuryr"),
    )


def active_within(
    neutron: Neutron, port_id: str, since: float, bound: float, container: str
) -> float:
    """Seconds from ``since`` until Neutron reports the port ACTIVE; fails past ``bound``."""
    while True:
        shown = neutron.show("ports", port_id)
        status = shown["status"] if shown else "gone"
        waited = time.monotonic() - since
        if status == "ACTIVE":
            return waited
        assert waited < bound, (
            f"port {port_id} of {container} is {status} {waited:.1f}s after docker run"
        )
        # Gently: Neutron's one API worker also handles the OVN events that make ports ACTIVE.
        time.sleep(0.5)


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
            waited = active_within(neutron, ours["port_id"], returned, daemon.bound, name)
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
    kept = [lane_names[-1] for lane_names in names]
    try:
        with ThreadPoolExecutor(LANES) as pool:
            futures = [
                pool.submit(lane, daemon, neutron, network, lane_names, True)
                for lane_names in names
            ]
            starts = [s for f in futures for s in f.result()]
    except BaseException:
        remove(kept)
        raise
    return starts, kept


def remove(containers: list[str]) -> None:
    """Before the network goes (a container left on it would keep it)."""
    for name in containers:
        docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("ipam", ["docker", "kuryr"], ids=["docker-ipam", "kuryr-ipam"])
def test_every_port_goes_active_within_the_bound_vifs_reused(
    env: DockerEnv, daemon: Daemon, neutron: Neutron, ipam: str
) -> None:
    network = env.network(*(["--ipam-driver", "kuryr"] if ipam == "kuryr" else []))
    starts, running = run_lanes(env, daemon, neutron, network)
    try:
        check_starts(starts, daemon, running)
    finally:
        remove(running)


def check_starts(starts: list[Start], daemon: Daemon, running: list[str]) -> None:
    assert len(starts) == STARTS
    # The path under test: ports (and their VIFs) came back from the pool to serve again.
    reused = len(starts) - len({s.port_id for s in starts})
    assert reused >= STARTS // 2, f"only {reused} of {STARTS} starts reused a pool port"

    # The daemon's own record comes to say ACTIVE too (it checks off the start path).
    for name in running:

        def daemon_says_active(container: str = name) -> bool:
            return [p["status"] for p in daemon.ports(container)] == ["ACTIVE"]

        wait_for(daemon_says_active, f"kuryr port {name} to show ACTIVE", daemon.bound)


def iface_ids(name: str) -> str:
    """The OVS interface's external_ids, as ovs-vsctl prints them ("" when it is gone)."""
    done = subprocess.run(
        ["ovs-vsctl", "get", "Interface", name, "external_ids"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def test_a_vif_ovn_no_longer_binds_is_noticed_logged_and_reattached(
    env: DockerEnv, daemon: Daemon, neutron: Neutron
) -> None:
    network = env.network("--ipam-driver", "kuryr")
    container = env.container(network)
    (ours,) = daemon.ports(container)
    port_id, tap = ours["port_id"], host_ifname(ours["port_id"])
    log_size = daemon.log.stat().st_size

    run(["ovs-vsctl", "remove", "Interface", tap, "external_ids", "iface-id"])

    # The daemon's sweep finds the VIF unbound in the local OVSDB and re-attaches it.
    def reattached() -> bool:
        ids = iface_ids(tap)
        return f'iface-id="{port_id}"' in ids and 'ovn-installed="true"' in ids

    wait_for(reattached, f"the daemon to re-attach {tap}", port_status.SWEEP + SETTLE_TIMEOUT)
    with daemon.log.open() as log:
        log.seek(log_size)
        logged = log.read()
    assert f"port {port_id}: interface {tap} has no iface-id" in logged, logged[-2000:]

    def neutron_and_daemon_say_active() -> bool:
        shown = neutron.show("ports", port_id)
        return bool(shown and shown["status"] == "ACTIVE") and [
            p["status"] for p in daemon.ports(container)
        ] == ["ACTIVE"]

    wait_for(neutron_and_daemon_say_active, f"port {port_id} ACTIVE again")
