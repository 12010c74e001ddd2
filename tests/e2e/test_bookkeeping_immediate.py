"""``[pool] max = 0`` and ``bookkeeping = immediate``: every port of a container is findable in
Neutron by ``device_id`` and by name the moment ``docker run`` returns (as with
kuryr-libnetwork), for containers started one by one and several at once, with Kuryr's IPAM
and with Docker's.

Disrupting: the stack's daemon is replaced, on the same socket and state directory, by one
with those settings for the test's duration, then restored. The stack's lock is held
meanwhile, so no concurrent ``kuryr stack up`` restarts a daemon under the test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from kuryr import config as config_mod
from kuryr import naming
from kuryr.config import BOOKKEEPING_IMMEDIATE
from kuryr.stack import lifecycle, proc
from kuryr.stack.daemon import MARKER, START_TIMEOUT, KuryrDaemon, activates, executable
from tests.conftest import StackFacts
from tests.e2e.helpers import IMAGE, DockerEnv, Neutron, docker, endpoint, port_ips
from tests.e2e.scenario import free_subnet

pytestmark = pytest.mark.stack

ONE_BY_ONE = 3
AT_ONCE = 4


def immediate_config(stack: StackFacts, directory: Path) -> Path:
    """The stack daemon's config with pools off and immediate bookkeeping."""
    parser = config_mod.new_parser()
    parser.read(stack.layout.sub("kuryr.conf"))
    if not parser.has_section("pool"):
        parser.add_section("pool")
    for key, value in (("min", "0"), ("max", "0"), ("batch", "0")):
        parser.set("pool", key, value)
    parser.set("pool", "bookkeeping", BOOKKEEPING_IMMEDIATE)
    path = directory / "kuryr.conf"
    with path.open("w") as out:
        parser.write(out)
    loaded = config_mod.load(path)
    assert (loaded.pool.max, loaded.pool.bookkeeping) == (0, BOOKKEEPING_IMMEDIATE)
    return path


@contextmanager
def daemon_with(stack: StackFacts, conf: Path, directory: Path) -> Iterator[None]:
    """``kuryr serve`` with ``conf`` in place of the stack's daemon; the stack's is back after."""
    log, pidfile = directory / "kuryr.log", directory / "kuryr.pid"
    with lifecycle.locked(stack.layout):
        stack_daemon = KuryrDaemon(stack.layout)
        stack_daemon.stop()
        try:
            pid = proc.spawn([executable(), "--config-file", str(conf), "serve"], log, pidfile)

            def ready() -> bool:
                assert proc.alive(pid), "\n".join(proc.tail(log))
                return activates()[0]

            assert proc.wait_for(ready, START_TIMEOUT), "\n".join(proc.tail(log))
            yield
        finally:
            proc.stop_pidfile(pidfile, MARKER)
            stack_daemon.start()


def problems_right_after_run(neutron: Neutron, name: str, network: str) -> list[str]:
    """``docker run`` the container, then at once: its port by device_id and by name."""
    docker("run", "-d", "--name", name, "--net", network, IMAGE, "sleep", "3600")
    ep = endpoint(name, network)
    by_id = neutron.find("ports", device_id=ep.endpoint_id)
    by_name = neutron.find("ports", name=naming.port_name(ep.endpoint_id))
    if len(by_id) != 1 or [p["id"] for p in by_name] != [by_id[0]["id"]]:
        return [f"{name}: by device_id {by_id}, by name {by_name}"]
    port = by_id[0]
    found = []
    if not set(naming.id_tags(ep.endpoint_id)) <= set(port["tags"]):
        found.append(f"{name}: port {port['id']} tags {port['tags']}")
    if port_ips(port) != {ep.ipv4} or port["mac_address"] != ep.mac:
        found.append(f"{name}: port {port['id']} is not {ep}")
    return found


def test_ports_are_in_neutron_when_docker_run_returns(
    stack: StackFacts, rel_env: DockerEnv, neutron: Neutron, tmp_path: Path
) -> None:
    conf = immediate_config(stack, tmp_path)
    kuryr_ipam = rel_env.network("--ipam-driver", "kuryr")
    docker_ipam = rel_env.network("--subnet", free_subnet(neutron, "10.231.{}.0/24", range(256)))
    names: list[str] = []
    lock = threading.Lock()

    def started(network: str) -> list[str]:
        with lock:
            name = rel_env.name("c")
            names.append(name)
        return problems_right_after_run(neutron, name, network)

    try:
        with daemon_with(stack, conf, tmp_path):
            problems: list[str] = []
            for network in (kuryr_ipam, docker_ipam):
                for _ in range(ONE_BY_ONE):
                    problems += started(network)
                with ThreadPoolExecutor(AT_ONCE) as workers:
                    for found in workers.map(started, [network] * AT_ONCE):
                        problems += found
            assert problems == []
            assert len(names) == 2 * (ONE_BY_ONE + AT_ONCE)
    finally:
        for name in names:
            docker("rm", "-f", name, check=False)
    assert KuryrDaemon(stack.layout).check()[0], "the stack's daemon is not back"
