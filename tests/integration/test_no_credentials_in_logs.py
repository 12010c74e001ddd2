"""Keystone credentials never reach the daemon's log or Docker's error messages.

A private daemon runs with ``auth_type = password`` and a unique password, at debug level,
against a Keystone that is not there (a closed local port): every request that needs Neutron
then goes through keystoneauth's authentication and fails. The log and every answer are
searched for the password (and the username, which is unique too).
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import StackFacts
from tests.fuzz_requests import post
from tests.integration.private_daemon import KURYR, private_daemon

pytestmark = pytest.mark.stack


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def keystone_section(password: str, username: str, with_endpoint: bool) -> str:
    from kuryr.stack.layout import NEUTRON_URL

    endpoint = f"endpoint = {NEUTRON_URL}\n" if with_endpoint else ""
    return (
        "[neutron]\nauth_type = password\n"
        f"auth_url = http://127.0.0.1:{closed_port()}/v3\n"
        f"username = {username}\npassword = {password}\n"
        "project_name = service\nuser_domain_name = Default\nproject_domain_name = Default\n"
        f"{endpoint}timeout = 3\nretries = 1\n"
    )


def requests_needing_neutron() -> list[tuple[str, dict[str, object]]]:
    network_id = secrets.token_hex(32)
    return [
        ("/IpamDriver.RequestPool", {"AddressSpace": "", "Pool": "", "Options": {}, "V6": False}),
        (
            "/NetworkDriver.CreateNetwork",
            {
                "NetworkID": network_id,
                "Options": {},
                "IPv4Data": [
                    {"AddressSpace": "", "Pool": "10.10.250.0/24", "Gateway": "10.10.250.1/24"}
                ],
                "IPv6Data": [],
            },
        ),
        (
            "/NetworkDriver.CreateEndpoint",
            {"NetworkID": network_id, "EndpointID": secrets.token_hex(32), "Interface": {}},
        ),
        ("/NetworkDriver.DeleteNetwork", {"NetworkID": network_id}),
    ]


def test_keystone_password_never_logged(stack: StackFacts) -> None:
    password = f"rel-pw-{secrets.token_hex(12)}"
    username = f"rel-user-{secrets.token_hex(6)}"
    section = keystone_section(password, username, with_endpoint=True)
    with private_daemon(section) as daemon:
        answers = []
        for path, body in requests_needing_neutron():
            status, answer = post(daemon.socket, path, json.dumps(body).encode())
            answers.append((path, status, answer))
        log = daemon.log_text()
    failed = [a for a in answers if a[1] >= 500]
    # The requests did go through authentication, and it failed naming Keystone's address.
    assert failed, answers
    assert all("Keystone" in json.dumps(a[2]) for a in failed), answers
    assert password not in log and username not in log
    assert password not in json.dumps(answers) and username not in json.dumps(answers)


def test_keystone_password_never_logged_when_start_up_fails(stack: StackFacts) -> None:
    """Without an endpoint the daemon must ask Keystone's catalog at start, and cannot."""
    password = f"rel-pw-{secrets.token_hex(12)}"
    username = f"rel-user-{secrets.token_hex(6)}"
    with tempfile.TemporaryDirectory(prefix="rel-creds-") as tmp:
        root = Path(tmp)
        (root / "kuryr.conf").write_text(
            f"[DEFAULT]\ndebug = true\nsocket = {root / 'kuryr.sock'}\n"
            f"state_dir = {root / 'state'}\n"
            + keystone_section(password, username, with_endpoint=False)
        )
        done = subprocess.run(
            [str(KURYR), "--config-file", str(root / "kuryr.conf"), "serve"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "cannot start: cannot set up the Neutron client" in output, output
    assert "Traceback" not in output
    assert password not in output and username not in output
