"""Tokens run out while Kuryr serves a burst of container starts, and no start fails.

The stack's Keystone issues tokens for 160 s (``TOKEN_LIFETIME``); keystoneauth renews a
token once it is within 120 s of expiring, so Kuryr uses a token for 40 s and the 60-s burst
outlives the one it began with. After the first wave every token of the ``kuryr`` user is
revoked (as when one expires early, or an operator revokes it), while Kuryr's is still young
enough to be used: the Keystone-protected Neutron answers Kuryr's next request 401, and
keystoneauth must fetch a new token and send the request again. Both are read from the logs
(Keystone's request log names the client, Neutron's logs each 401).

A private ``kuryr serve`` (password in the stack's clouds.yaml) under a private dockerd; the
stack's daemon and dockerd are not touched.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.helpers import Neutron, run
from tests.e2e.keystone_env import NO_HEALING, KeystoneFacts, LogMark
from tests.e2e.private_dockerd import PrivateDockerd, private_dockerd
from tests.integration.private_daemon import private_daemon

pytestmark = pytest.mark.stack

BURST_SECONDS = 60.0
WAVE = 4


def start_wave(dockerd: PrivateDockerd, network: str, names: list[str]) -> list[str]:
    """Start ``names`` at once; the failures, as docker said them."""

    def start(name: str) -> str:
        argv = ["docker", "-H", f"unix://{dockerd.socket}", "run", "-d", "--name", name]
        done = run([*argv, "--net", network, "kuryr/busybox", "sleep", "600"], check=False)
        return "" if done.returncode == 0 else f"{name}: {done.stderr.strip()}"

    with ThreadPoolExecutor(len(names)) as pool:
        return [said for said in pool.map(start, names) if said]


def test_tokens_expire_during_a_burst_of_starts_and_no_start_fails(
    keystone_facts: KeystoneFacts, tmp_path: Path
) -> None:
    facts = keystone_facts
    env = {"OS_CLIENT_CONFIG_FILE": str(facts.clouds_yaml)}
    section = "[neutron]\ncloud = kuryr-stack\n"
    driver, prefix = f"kuryrkx{secrets.token_hex(3)}", f"kx-{secrets.token_hex(3)}"
    with (
        private_daemon(section, extra_sections=NO_HEALING, env=env) as daemon,
        private_dockerd(driver, daemon.socket) as dockerd,
    ):
        network = f"{prefix}-net"
        docker_id = dockerd.docker(
            "network", "create", "-d", driver, "--ipam-driver", driver, network
        )
        neutron_net = Neutron().network_of_docker(docker_id)
        mark = LogMark(facts.layout)
        failures: list[str] = []
        began, wave, revoked_at = time.monotonic(), 0, 0.0
        while time.monotonic() - began < BURST_SECONDS:
            names = [f"{prefix}-{wave}-{i}" for i in range(WAVE)]
            failures += start_wave(dockerd, network, names)
            dockerd.docker("rm", "-f", *names, check=False)
            wave += 1
            if not revoked_at:
                facts.revoke_tokens()
                revoked_at = time.monotonic()
        renewed, refused = mark.tokens_issued_to_kuryr(), mark.neutron_refusals()
        dockerd.docker("network", "rm", network)
        Neutron().wait_gone("networks", neutron_net["id"])
        log = daemon.log_text()
    print(f"{wave * WAVE} starts in {BURST_SECONDS:.0f} s, {renewed} tokens, {refused} refusals")
    assert not failures, failures
    assert revoked_at and wave >= 4, f"only {wave} waves of {WAVE}"
    # One after the revocation, one when that one had 120 s left.
    assert renewed >= 2, f"Keystone issued Kuryr {renewed} tokens in {BURST_SECONDS:.0f} s"
    assert refused >= 1, "Neutron never refused the revoked token"
    assert "Traceback" not in log and facts.password not in log
