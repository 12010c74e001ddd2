"""The crash tests' blow: SIGKILL the stack's Kuryr daemon mid-traffic, then start it again."""

from __future__ import annotations

import os
import random
import signal
import time

from kuryr.stack import lifecycle, proc
from kuryr.stack.daemon import MARKER, KuryrDaemon
from tests.conftest import StackFacts


def kill_daemon_then_restart(stack: StackFacts, delay: float) -> bool:
    """After ``delay`` s, SIGKILL the daemon and start it again; True when a live one was hit."""
    time.sleep(delay)
    pid = proc.running(stack.layout.pidfile("kuryr"), MARKER)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        proc.wait_for(lambda: not proc.alive(pid), 10)
    time.sleep(random.uniform(0, 1.0))
    # Under the stack's lock: a concurrent `kuryr stack up` may be restarting it too.
    with lifecycle.locked(stack.layout):
        KuryrDaemon(stack.layout).start()
    return pid is not None
