"""A TCP relay from inside a network namespace to the namespace it was started in.

Neutron listens on the machine's 127.0.0.1 only; a simulated host's daemon, in the host's
network namespace, reaches it at the same ``http://127.0.0.1:9696`` through this relay, so
its config reads like any host's. One process: the listening socket is opened inside the
namespace (``setns``), then the process returns to its own namespace to connect out.

``python -m kuryr.stack.nsrelay NETNS_PATH PORT PIDFILE``: listens on 127.0.0.1:PORT in
NETNS_PATH, forwards to 127.0.0.1:PORT here, and writes PIDFILE once it listens."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    # os.setns arrived in Python 3.12.
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def listen_in(netns: Path, port: int) -> socket.socket:
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, port))
            sock.listen(64)
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass  # either side went away: close the other
    finally:
        writer.close()


async def _relay(port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    try:
        target_r, target_w = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(_pipe(client_r, target_w), _pipe(target_r, client_w))


async def serve(sock: socket.socket, port: int, pidfile: Path) -> None:
    server = await asyncio.start_server(lambda r, w: _relay(port, r, w), sock=sock)
    pidfile.write_text(f"{os.getpid()}\n")
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    netns, port, pidfile = Path(argv[0]), int(argv[1]), Path(argv[2])
    sock = listen_in(netns, port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sock, port, pidfile))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
