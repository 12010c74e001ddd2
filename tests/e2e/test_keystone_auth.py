"""Kuryr against a Keystone-protected Neutron (``kuryr stack up --keystone``): a password and an
application credential, each given through a clouds.yaml entry (``[neutron] cloud``) and
through ``OS_*`` variables, start a container on a Kuryr network; wrong credentials and an
unreachable Keystone give one clear line at start and in ``kuryr health``; no credential
reaches the daemon's log.

Each case runs a private ``kuryr serve`` (this worktree's code, its own socket and state,
no endpoint: it finds Neutron on 9697 in Keystone's catalog) under a private dockerd, so the
stack's daemon and dockerd are not touched.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from kuryr.stack.layout import NEUTRON_KEYSTONE_URL
from tests.e2e.helpers import Neutron
from tests.e2e.keystone_env import (
    APP_CREDENTIAL,
    AUTH_URL,
    CLOUDS_YAML,
    NO_HEALING,
    OS_VARS,
    PASSWORD,
    KeystoneFacts,
    application_credential,
    credentials,
    kuryr,
    write_config,
)
from tests.e2e.private_dockerd import private_dockerd
from tests.integration.private_daemon import private_daemon

pytestmark = pytest.mark.stack

REFUSED = f"cannot authenticate: Keystone at {AUTH_URL} refused the credentials (HTTP 401)"


def health_lines(conf: Path, env: dict[str, str]) -> dict[str, str]:
    """``kuryr health``'s lines by check name."""
    done = kuryr(conf, env, "health", timeout=60)
    lines = [line.split(None, 2) for line in done.stdout.splitlines() if line.strip()]
    return {name: f"{status}  {detail}" for status, name, detail in lines}


@pytest.mark.parametrize("where", [CLOUDS_YAML, OS_VARS])
@pytest.mark.parametrize("kind", [PASSWORD, APP_CREDENTIAL])
def test_kuryr_authenticates_and_starts_a_container(
    keystone_facts: KeystoneFacts, tmp_path: Path, kind: str, where: str
) -> None:
    facts = keystone_facts
    with application_credential(facts) as app:
        given = ("kuryr", facts.password) if kind == PASSWORD else app
        section, env = credentials(kind, where, facts, tmp_path, given)
        with private_daemon(section, extra_sections=NO_HEALING, env=env) as daemon:
            checks = health_lines(daemon.root / "kuryr.conf", env)
            assert all(line.startswith("ok") for line in checks.values()), checks
            driver = f"kuryrks{secrets.token_hex(3)}"
            name = f"ks-{secrets.token_hex(3)}"
            with private_dockerd(driver, daemon.socket) as dockerd:
                docker_id = dockerd.docker(
                    "network", "create", "-d", driver, "--ipam-driver", driver, name
                )
                network = Neutron().network_of_docker(docker_id)
                # Made through the Keystone-protected Neutron, as the kuryr user.
                assert network["project_id"] == facts.project_id, network
                [subnet] = Neutron().find("subnets", network_id=network["id"])
                shown = dockerd.docker(
                    "run", "--rm", "--net", name, "kuryr/busybox", "ip", "-4", "-o", "addr"
                )
                prefix = subnet["cidr"].rsplit(".", 1)[0] + "."
                assert f"inet {prefix}" in shown, (subnet["cidr"], shown)
                dockerd.docker("network", "rm", name)
            # Answered once journaled: the daemon removes it from Neutron before it is stopped.
            Neutron().wait_gone("networks", network["id"])
            log = daemon.log_text()
    assert "Traceback" not in log
    assert given[1] not in log, "a secret reached the daemon's log"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("kind", "where"), [(PASSWORD, OS_VARS), (APP_CREDENTIAL, CLOUDS_YAML)])
def test_wrong_credentials_give_one_line_at_start_and_in_health(
    keystone_facts: KeystoneFacts, tmp_path: Path, kind: str, where: str
) -> None:
    facts = keystone_facts
    wrong = f"wrong-{secrets.token_hex(12)}"
    with application_credential(facts) as app:
        given = ("kuryr", wrong) if kind == PASSWORD else (app[0], wrong)
        section, env = credentials(kind, where, facts, tmp_path, given)
        conf = write_config(tmp_path, section)
        done = kuryr(conf, env, "serve", timeout=60)
        checks = health_lines(conf, env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    said = [line for line in output.splitlines() if "Keystone" in line]
    assert len(said) == 1 and REFUSED in said[0], output
    assert "Traceback" not in output and wrong not in output
    assert checks["neutron"].startswith("FAIL") and REFUSED in checks["neutron"], checks


def test_unreachable_keystone_gives_one_line_and_kuryr_serves(tmp_path: Path) -> None:
    """With Neutron's endpoint given, Kuryr serves without Keystone (dockerd must find its
    socket to restore containers); every Neutron call then says Keystone is unreachable."""
    secret = f"pw-{secrets.token_hex(12)}"
    auth_url = f"http://127.0.0.1:{closed_port()}/v3"
    section = (
        f"[neutron]\nauth_type = password\nauth_url = {auth_url}\nusername = kuryr\n"
        f"password = {secret}\nproject_name = service\nuser_domain_name = Default\n"
        f"project_domain_name = Default\nendpoint = {NEUTRON_KEYSTONE_URL}\n"
    )
    with private_daemon(section, extra_sections=NO_HEALING) as daemon:
        checks = health_lines(daemon.root / "kuryr.conf", {})
        log = daemon.log_text()
    # One error at start; the requests that then fail (the pools' reload) say why, as warnings.
    errors = [line for line in log.splitlines() if " ERROR " in line]
    unreachable = f"cannot connect to the identity service (Keystone) at {auth_url}"
    assert len(errors) == 1 and unreachable in errors[0] and "serving anyway" in errors[0], log
    assert "keystoneauth" not in log, log
    assert checks["daemon"].startswith("ok"), checks
    assert checks["neutron"].startswith("FAIL") and unreachable in checks["neutron"], checks
    assert secret not in log and "Traceback" not in log
