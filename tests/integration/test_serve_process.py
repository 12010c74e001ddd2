"""``kuryr serve`` as a real process on a private socket: start-up, answers, SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz_requests import post

pytestmark = pytest.mark.stack

KURYR = Path(sys.executable).with_name("kuryr")


@pytest.fixture
def served(stack: object) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    from kuryr.stack.layout import NEUTRON_URL
    from kuryr.stack.ovs import hostname

    with tempfile.TemporaryDirectory(prefix="srv-serve-") as tmp:
        root = Path(tmp)
        sock, log = root / "plugins" / "kuryr.sock", root / "serve.log"
        (root / "kuryr.conf").write_text(
            f"[DEFAULT]\ndebug = true\nsocket = {sock}\nstate_dir = {root / 'state'}\n"
            f"[neutron]\nauth_type = none\nendpoint = {NEUTRON_URL}\n"
            f"[binding]\nhost = {hostname()}\n"
        )
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(KURYR), "--config-file", str(root / "kuryr.conf"), "serve"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                assert daemon.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "socket never appeared\n" + log.read_text()
                time.sleep(0.05)
            yield daemon, sock, log
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()


def test_serve_answers_and_stops_cleanly_on_sigterm(
    served: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    daemon, sock, log = served
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert post(sock, "/Plugin.Activate", b"") == (
        200,
        {"Implements": ["NetworkDriver", "IpamDriver"]},
    )
    status, answer = post(sock, "/NetworkDriver.CreateNetwork", b'{"NetworkID": "nope"}')
    assert status == 400
    assert answer == {
        "Err": "CreateNetwork: NetworkID: must be a 64-character lowercase hex Docker id"
    }
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, log.read_text()
    assert not sock.exists()
    text = log.read_text()
    assert "POST Plugin.Activate -> 200 in" in text
    assert "Traceback" not in text
