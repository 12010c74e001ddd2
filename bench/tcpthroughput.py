"""TCP throughput between two network namespaces, run inside them by bench.mhthroughput.

``tcpthroughput.py sink PORT`` listens on PORT, says ``listening`` on stdout once it does,
then takes connections one at a time: it reads each to its end and answers with the number
of bytes it read. ``tcpthroughput.py send ADDRESS PORT BYTES`` sends BYTES on one connection
and prints the seconds from its first byte sent to the sink's answer (the sink had read every
byte by then), or null when the transfer failed or the sink read another count.

Plain sockets from the machine's Python: the containers' busybox has no throughput tool, and
the kernel does the work that is measured (the copy through veths, OVS and geneve)."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Sequence

CHUNK = 1 << 20
TIMEOUT_S = 30.0


def serve(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen()
        print("listening", flush=True)
        buffer = bytearray(CHUNK)
        while True:
            conn, _ = server.accept()
            answer(conn, buffer)


def answer(conn: socket.socket, buffer: bytearray) -> None:
    """Read ``conn`` to its end, answer with the byte count, close it."""
    with conn:
        conn.settimeout(TIMEOUT_S)
        total = 0
        try:
            while (got := conn.recv_into(buffer)) > 0:
                total += got
            conn.sendall(f"{total}\n".encode())
        except OSError:
            return  # the sender gave up: it counts that transfer as failed


def send(address: str, port: int, size: int) -> float | None:
    payload = memoryview(bytes(CHUNK))
    try:
        with socket.create_connection((address, port), timeout=TIMEOUT_S) as conn:
            started = time.perf_counter()
            left = size
            while left > 0:
                step = min(left, CHUNK)
                conn.sendall(payload[:step])
                left -= step
            conn.shutdown(socket.SHUT_WR)
            answer = conn.makefile("r").readline()
            elapsed = time.perf_counter() - started
    except OSError:
        return None
    return elapsed if answer.strip() == str(size) else None


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["sink"] and len(argv) == 2:
        serve(int(argv[1]))
        return 0
    if argv[:1] == ["send"] and len(argv) == 4:
        print(json.dumps(send(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    print("usage: tcpthroughput.py sink PORT | send ADDRESS PORT BYTES", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
