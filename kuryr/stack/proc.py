"""Processes by PID: pidfiles, background start, stop (SIGTERM then SIGKILL), waiting,
and running short commands with argv lists whose failures become StackErrors."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kuryr.stack.errors import StackError


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    """The process's argv joined by spaces, or "" when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def running(pidfile: Path, marker: str) -> int | None:
    """The PID in ``pidfile`` if that process lives and its argv contains ``marker``.

    The marker guards against PID reuse after a crash left a stale pidfile behind."""
    pid = read_pid(pidfile)
    if pid is None or not alive(pid) or marker not in cmdline(pid):
        return None
    return pid


def find(marker: str) -> list[int]:
    """Live processes of this mount namespace whose argv contains ``marker`` (a path or name
    only the stack uses). A simulated host's dockerd and containerd run the machine's paths
    (``/var/run/docker/...``) in mount namespaces of their own, and are not the machine's."""
    here = _mount_namespace("self")
    return [
        pid
        for pid in (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
        if marker in cmdline(pid) and alive(pid) and _mount_namespace(str(pid)) == here
    ]


def _mount_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (children first level first)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_for(lambda: not alive(pid), wait):
            return


def stop_child(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float) -> None:
    """Stop a child this process started: SIGTERM, up to ``timeout`` for it to exit, then
    SIGKILL; reaped either way (no zombie left)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_pidfile(pidfile: Path, marker: str, timeout: float = 10.0) -> None:
    """Stop the process a pidfile names (if it is still the one we started) and drop the file."""
    pid = running(pidfile, marker)
    if pid is not None:
        terminate(pid, timeout)
    pidfile.unlink(missing_ok=True)


def spawn(
    argv: Sequence[str], log: Path, pidfile: Path | None, env: Mapping[str, str] | None = None
) -> int:
    """Start a long-running process in its own session, output appended to ``log``.

    ``pidfile`` is None for daemons that write their own."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            close_fds=True,
        )
    if pidfile is not None:
        pidfile.write_text(f"{child.pid}\n")
    # The child outlives us; forget it so no ResourceWarning fires at exit.
    child.returncode = 0
    return child.pid


def run(
    component: str,
    argv: Sequence[str],
    timeout: float = 60.0,
    log: Path | None = None,
    input_bytes: bytes | None = None,
) -> str:
    """Run a short command; a failure raises StackError carrying its output as the reason."""
    try:
        done = subprocess.run(
            list(argv),
            input=input_bytes,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise StackError(
            component, f"{argv[0]} is not installed (run scripts/install-deps.sh)"
        ) from None
    except subprocess.TimeoutExpired:
        raise StackError(
            component, f"{' '.join(argv[:3])} timed out after {timeout:.0f} s", log
        ) from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        last = output[-1] if output else f"exit status {done.returncode}"
        raise StackError(component, f"{' '.join(argv[:3])} failed: {last}", log)
    return done.stdout.decode(errors="replace")


def tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
