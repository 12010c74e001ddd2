"""``kuryr serve`` as a real process on a private socket: start-up, answers, SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator

import pytest

from tests.fuzz_requests import post
from tests.integration.private_daemon import PrivateDaemon, private_daemon

pytestmark = pytest.mark.stack


@pytest.fixture
def served(stack: object) -> Iterator[PrivateDaemon]:
    with private_daemon() as daemon:
        yield daemon


def test_serve_answers_and_stops_cleanly_on_sigterm(
    served: PrivateDaemon,
) -> None:
    daemon, sock, log = served.process, served.socket, served.log
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert post(sock, "/Plugin.Activate", b"") == (
        200,
        {"Implements": ["NetworkDriver", "IpamDriver"]},
    )
    status, answer = post(sock, "/NetworkDriver.CreateNetwork", b'{"NetworkID": "nope"}')
    assert status == 400
    assert answer == {
        "Err": "CreateNetwork: NetworkID: must be a 64-character lowercase hex Docker id or a "
        "swarm network id"
    }
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, log.read_text()
    assert not sock.exists()
    text = log.read_text()
    assert "POST Plugin.Activate -> 200 in" in text
    assert "Traceback" not in text
