"""The daemon SIGKILLed at random moments while containers with ``-p`` start and stop at once;
once it is back and has healed (kuryr.ops.healing, no ``kuryr gc``), no port forwarding and no
floating IP is leaked: the network's floating IP forwards exactly the running containers'
published ports, to their addresses; and once they are removed, the floating IP goes too.

Each round removes the previous round's survivors and starts CONTAINERS containers at once on a
network attached to ``kuryr-router``, each publishing its own external port, half of them
removed again at once, while a killer SIGKILLs the stack's Kuryr daemon at a random moment and
starts it again.

Disruptive: kills the shared daemon; conftest runs this file after the other tests.
"""

from __future__ import annotations

import secrets
import time

import pytest

from kuryr import naming
from kuryr.stack import external
from tests.conftest import StackFacts
from tests.e2e.daemon_kill import (
    Outcome,
    containers_removed,
    crash_rounds,
    names_on,
    running_on,
    start,
)
from tests.e2e.helpers import DockerEnv, Neutron, docker, docker_network_id, endpoint

pytestmark = pytest.mark.stack

ROUNDS = 4
CONTAINERS = 8
# As test_crash: what a crash orphaned is reclaimed within about 35 s of the daemon's return on
# the stack (passes every 10 s, grace 20 s); a forwarding to a port released meanwhile, or a
# floating IP left empty, one pass and one grace later.
HEAL_BOUND = 150.0
POLL_SECONDS = 3.0
FIRST_PORT = 20000


def leaks(neutron: Neutron, network_id: str, wanted: set[tuple[int, str]]) -> list[str]:
    """What the network's publishing holds beyond ``wanted`` (external port, container
    address) or misses of it (empty: clean)."""
    fips = neutron.find("floatingips", tags=f"{naming.TAG_PUBLISH_NET}:{network_id}")
    if not wanted:
        return [f"floating IP {f['floating_ip_address']} with nothing to publish" for f in fips]
    if len(fips) != 1:
        return [f"{len(fips)} floating IPs for the network"]
    held = {
        (f["external_port"], f["internal_ip_address"])
        for f in neutron.port_forwardings(fips[0]["id"])
    }
    return [f"forwarding {h} of a gone container" for h in sorted(held - wanted)] + [
        f"forwarding {w} missing" for w in sorted(wanted - held)
    ]


def healed(neutron: Neutron, network_id: str, wanted: set[tuple[int, str]]) -> list[str]:
    deadline = time.monotonic() + HEAL_BOUND
    while found := leaks(neutron, network_id, wanted):
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    return found


def test_sigkill_during_starts_and_stops_with_p_leaks_nothing(
    stack: StackFacts, env: DockerEnv
) -> None:
    env.prefix = f"relp-{secrets.token_hex(4)}"
    with containers_removed(f"{env.prefix}-"):
        crash_rounds_then_check(stack, env)


def crash_rounds_then_check(stack: StackFacts, env: DockerEnv) -> None:
    neutron = Neutron()
    net = env.network("--ipam-driver", "kuryr", "-o", f"neutron.router={external.ROUTER}")
    network_id = neutron.network_of_docker(docker_network_id(net))["id"]

    def starter(name: str, round_no: int, i: int, outcome: Outcome) -> None:
        port = FIRST_PORT + round_no * CONTAINERS + i
        start(name, net, outcome, remove=i % 2 == 1, publish=port)

    outcome = crash_rounds(stack, f"{env.prefix}-", ROUNDS, CONTAINERS, starter, max_delay=5.0)

    assert outcome.kills >= ROUNDS - 1, f"only {outcome.kills} kill(s) hit a live daemon"
    assert outcome.started, f"no container started: {outcome.failed}"
    for name, error in outcome.failed.items():
        assert error, f"{name}: docker run failed without an error message"
    running = running_on(f"{env.prefix}-")
    wanted = {(outcome.started[n], endpoint(n, net).ipv4) for n in running}

    found = healed(neutron, network_id, wanted)
    assert found == [], f"left {HEAL_BOUND:.0f} s after the daemon was back: {found}"

    # Removing the survivors unpublishes them, and the floating IP goes with the last.
    docker("rm", "-f", *names_on(f"{env.prefix}-"))
    found = healed(neutron, network_id, set())
    assert found == [], f"left after the containers were removed: {found}"
