"""The crash tests' blow: rounds of containers started and removed at once while the stack's
Kuryr daemon is SIGKILLed at a random moment and started again."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from kuryr.stack import lifecycle, proc
from kuryr.stack.daemon import MARKER, KuryrDaemon
from tests.conftest import StackFacts, bring_up
from tests.e2e.helpers import IMAGE, docker, run


@dataclass
class Outcome:
    """What `docker run` said for each container of a test (a started one with the external
    port it published, 0 for none), and the kills that hit a live daemon."""

    started: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    kills: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


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


def _kill_and_restart(stack: StackFacts, delay: float, outcome: Outcome) -> None:
    if kill_daemon_then_restart(stack, delay):
        with outcome.lock:
            outcome.kills += 1


def start(name: str, net: str, outcome: Outcome, remove: bool, publish: int = 0) -> None:
    """`docker run -d` one container (publishing ``publish``:80 when given), recorded in
    ``outcome``; removed again at once when ``remove``."""
    argv = ["docker", "run", "-d", "--name", name, "--net", net]
    if publish:
        argv += ["-p", f"{publish}:80"]
    done = run([*argv, IMAGE, "sleep", "3600"], check=False)
    with outcome.lock:
        if done.returncode == 0:
            outcome.started[name] = publish
        else:
            outcome.failed[name] = done.stderr.strip()
    if remove:
        run(["docker", "rm", "-f", name], check=False)


def names_on(prefix: str) -> list[str]:
    out = docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}")
    return [n for n in out.split() if n.startswith(prefix)]


def running_on(prefix: str) -> set[str]:
    return {
        n for n in names_on(prefix) if docker("inspect", "-f", "{{.State.Running}}", n) == "true"
    }


# Starts one container of a round: (name, round number, index in the round, outcome).
Starter = Callable[[str, int, int, Outcome], None]


def crash_rounds(
    stack: StackFacts, prefix: str, rounds: int, containers: int, starter: Starter, max_delay: float
) -> Outcome:
    """Each round removes the previous round's survivors and starts ``containers`` containers
    at once, while the daemon is killed after a random delay (up to ``max_delay`` s) and
    started again. The stack is healthy again when this returns."""
    outcome = Outcome()
    workers = ThreadPoolExecutor(containers + 2)
    try:
        for round_no in range(rounds):
            survivors = names_on(prefix)
            # The jobs are waited on for their exceptions only; their results are dropped.
            jobs: list[Future[object]] = [
                workers.submit(run, ["docker", "rm", "-f", *survivors], check=False)
            ]
            jobs += [
                workers.submit(starter, f"{prefix}r{round_no}-{i}", round_no, i, outcome)
                for i in range(containers)
            ]
            delay = random.uniform(0.2, max_delay)
            jobs.append(workers.submit(_kill_and_restart, stack, delay, outcome))
            for job in jobs:
                job.result(timeout=300)
    finally:
        workers.shutdown()
        bring_up(stack.layout)
    return outcome


@contextmanager
def containers_removed(prefix: str) -> Iterator[None]:
    """The rounds' containers are not a DockerEnv's own: removed before its network goes."""
    try:
        yield
    finally:
        left = names_on(prefix)
        if left:
            run(["docker", "rm", "-f", *left], check=False)
