"""TCP connect time, run inside a container's network namespace by bench.mhprobe:
``tcpconnect.py ADDRESS PORT COUNT`` connects COUNT times, one after the other, and prints
each connect's duration in ms as a JSON list (null for one that failed).

A connect returns once the SYN-ACK is in, so it costs one round trip plus the kernel's work
on both ends; the connection is closed at once and nothing is sent on it."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Sequence

TIMEOUT_S = 2.0
# Between connects, so the server's accept loop is idle again when the next SYN comes.
GAP_S = 0.05


def connect_ms(address: str, port: int) -> float | None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT_S)
        started = time.perf_counter()
        try:
            sock.connect((address, port))
        except OSError:
            return None
        return (time.perf_counter() - started) * 1000.0


def main(argv: Sequence[str]) -> int:
    address, port, count = argv[0], int(argv[1]), int(argv[2])
    measured = []
    for _ in range(count):
        measured.append(connect_ms(address, port))
        time.sleep(GAP_S)
    print(json.dumps(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
