"""kuryr.sdnotify speaks systemd's notify protocol: one datagram on $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuryr import sdnotify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = str(tmp_path / "notify")
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


def test_ready_reaches_the_socket_named_by_notify_socket(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    assert sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1"


def test_an_abstract_socket_is_spelled_with_an_at_sign() -> None:
    name = f"kuryr-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify(sdnotify.STOPPING, {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    assert not sdnotify.notify(sdnotify.READY, {})


def test_an_unreachable_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert "cannot notify systemd (READY=1)" in caplog.text
