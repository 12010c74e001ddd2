"""systemd's readiness notification (``sd_notify``) for ``kuryr serve``.

Under ``Type=notify`` (share/kuryr/systemd/kuryr.service) systemd counts the daemon started
only once it sends ``READY=1``, and units ordered after it wait for that: docker.service, which
restores containers at start and gives up on a plugin whose socket is not up within about 12 s,
starts only once Kuryr's socket listens. The protocol is one datagram on the unix socket named
by ``$NOTIFY_SOCKET``; without that variable (not started by systemd, or a managed plugin)
nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

READY = "READY=1"
STOPPING = "STOPPING=1"


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``, ...) to systemd; True when it was sent.

    A failure is logged, not raised: the daemon serves either way, and systemd reports a
    unit that never became ready on its own.
    """
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        # An abstract-namespace socket: Linux spells its leading byte NUL.
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.warning("NOTIFY_SOCKET=%s: only unix socket paths are supported", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("cannot notify systemd (%s): %s", state, exc)
        return False
    return True
