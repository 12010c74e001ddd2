"""Neutron requests per container lifecycle (``docker run -d`` then ``docker rm -f``, pool
hit, steady state), counted for a private Kuryr daemon of this worktree's code, so the stack's
daemon is left as it is.

The private daemon runs with the stack daemon's ``[pool]`` and ``[reconcile]`` settings,
talks to Neutron through the counting proxy (bench.proxy) and is the stack dockerd's driver
``<PREFIX>lc`` through a spec file (``/etc/docker/plugins/<PREFIX>lc.spec``), a name the
stack's own networks never use. Each lifecycle's requests are those that reached Neutron from the
start of ``docker run`` until the daemon was quiet after ``docker rm -f`` (bench.counting's
windows), so pool refills, shrinks, status reads and reconciliation passes that fall in it
count. ``python -m bench.lifecycle_calls [REPS] [PREFIX] [--code CHECKOUT]`` prints, per
IPAM, each lifecycle's requests (method and path), their mean with and without the periodic
reconciliation passes, and the port's status in Neutron after each start, as JSON.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.calls import Call, kind_of_path, last_arrival, parse_log, periodic
from bench.dockercli import IMAGE, docker
from bench.params import REPO
from kuryr.stack import daemon, proc

SPEC_DIR = Path("/etc/docker/plugins")
STACK_CONFIG = Path("/var/lib/kuryr-stack/kuryr.conf")
NEUTRON = "http://127.0.0.1:9696"
WHO = "lifecycle"
# A daemon is quiet once it made no Neutron call for this long (bench.params.QUIET_GAP_S
# is 2.0: the bookkeeping delay of the stack's config is 1 s, its background pause 0.5 s).
QUIET_GAP_S = 2.5
QUIET_MAX_S = 20.0
REMOVAL_TIMEOUT_S = 120.0
# Unmeasured lifecycles before the measured ones: a pool port's first container reads its
# status (the port was never seen ACTIVE), and Kuryr's IPAM takes the pool's ports in turn, so
# the steady state begins once every pool port served once (WARMUP beyond the pool's size).
WARMUP = 2
IPAMS = {"kuryr": 0, "docker": 1}


@dataclass
class Counting:
    """The proxy's log and the moments that bound each operation."""

    log: Path

    def calls(self) -> list[Call]:
        with open(self.log) as lines:
            return [c for c in parse_log(lines) if c.who == WHO]

    def settle(self, since: float) -> float:
        """Wait until no call arrived for QUIET_GAP_S; returns that moment."""
        deadline = since + QUIET_MAX_S
        while True:
            now = time.time()
            last = last_arrival(self.calls(), WHO) or 0.0
            if now - max(last, since) >= QUIET_GAP_S or now >= deadline:
                return now
            time.sleep(0.2)

    def between(self, start: float, end: float) -> list[Call]:
        return [c for c in self.calls() if start <= c.arrived <= end]


def daemon_config(root: Path, socket: Path, endpoint: str) -> str:
    """The private daemon's config: the stack daemon's pool, reconcile and binding settings,
    its own socket, state and Neutron endpoint."""
    stack = configparser.ConfigParser(interpolation=None)
    stack.read(STACK_CONFIG)
    out = configparser.ConfigParser(interpolation=None)
    out["DEFAULT"] = {"debug": "true", "socket": str(socket), "state_dir": str(root / "state")}
    out["neutron"] = {"auth_type": "none", "endpoint": endpoint}
    for section in ("binding", "pool", "reconcile"):
        if stack.has_section(section):
            out[section] = {
                k: v for k, v in stack.items(section, raw=True) if k not in out["DEFAULT"]
            }
    text = Path(root / "kuryr.conf")
    with text.open("w") as f:
        out.write(f)
    return str(text)


@contextlib.contextmanager
def private_driver(driver: str, port: int, code: Path) -> Iterator[tuple[Counting, Path]]:
    """The counting proxy and a private daemon of the Kuryr code in ``code`` (a checkout)
    registered with the stack's dockerd as ``driver``; yields the counting and the daemon's
    log."""
    kuryr = Path(sys.executable).with_name("kuryr")
    # Kept after the run: the daemon's log says what each request was for.
    root = Path(tempfile.mkdtemp(prefix=f"{driver}-calls-", dir="/tmp"))
    log, serve_log = root / "calls.jsonl", root / "serve.log"
    log.write_text("")
    # One path per driver name for good: dockerd keeps the address of a plugin it has
    # once activated until it restarts, whatever its spec file says later.
    sock = Path(f"/tmp/{driver}.kuryr.sock")
    sock.unlink(missing_ok=True)
    conf = daemon_config(root, sock, f"http://127.0.0.1:{port}")
    proxy_argv = [sys.executable, "-m", "bench.proxy", "--upstream", NEUTRON]
    proxy_argv += ["--log", str(log), "--listen", f"{WHO}=127.0.0.1:{port}"]
    with (root / "proxy.out").open("wb") as out:
        proxy = subprocess.Popen(proxy_argv, stdout=out, stderr=subprocess.STDOUT)
    with serve_log.open("wb") as out:
        serve = subprocess.Popen(
            [str(kuryr), "--config-file", conf, "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(code)},
        )
    spec = SPEC_DIR / f"{driver}.spec"
    try:
        if not daemon.child_answers(sock, serve, 30):
            raise RuntimeError("private daemon did not start:\n" + serve_log.read_text())
        SPEC_DIR.mkdir(parents=True, exist_ok=True)
        spec.write_text(f"unix://{sock}\n")
        yield Counting(log), serve_log
    finally:
        spec.unlink(missing_ok=True)
        for process in (serve, proxy):
            proc.stop_child(process, timeout=30)


def _status(calls: list[Call]) -> str:
    """Neutron's status of the port the start wrote (read straight from Neutron, not
    counted): a start that skipped its status read must still find it ACTIVE."""
    written = [c.path.split("?")[0] for c in calls if c.method == "PUT" and "/tags" not in c.path]
    if not written:
        return "no port written"
    port_id = written[-1].rsplit("/", 1)[1]
    return str(_get(f"ports/{port_id}")["port"]["status"])


def _get(path: str) -> Any:
    """A read straight from Neutron (not through the proxy: not counted)."""
    with urllib.request.urlopen(f"{NEUTRON}/v2.0/{path}", timeout=10) as answer:
        return json.load(answer)


def _neutron_network(network: str) -> str:
    """The Neutron network of a Kuryr Docker network."""
    found = docker("network", "inspect", "-f", "{{.Id}}", network)
    tag = f"kuryr.net.uuid.lh:{found.stdout.strip()[:32]}"
    [net] = _get(f"networks?tags={urllib.parse.quote(tag)}")["networks"]
    return str(net["id"])


def _removed(neutron_id: str) -> None:
    """Wait until the network's removal, which the daemon carries on after ``docker network
    rm`` returned, is over in Neutron: the daemon is stopped next."""
    deadline = time.monotonic() + REMOVAL_TIMEOUT_S
    while _get(f"networks?id={neutron_id}")["networks"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Neutron network {neutron_id} still there")
        time.sleep(0.5)


def _pool_ports(network: str) -> int:
    """Kuryr's ports on the Docker network's Neutron network (read straight from Neutron,
    not counted), once its pool's first refill is over."""
    query = f"ports?network_id={_neutron_network(network)}&device_owner=compute%3Akuryr"
    return len(_get(query)["ports"])


def _kinds(calls: list[Call]) -> list[str]:
    return [
        f"{c.method} {c.path.split('?')[0]}" + (f" -> {c.status}" if c.status >= 400 else "")
        for c in calls
    ]


def lifecycles(counting: Counting, network: str, prefix: str, reps: int) -> list[dict[str, Any]]:
    """``reps`` lifecycles after the unmeasured ones (one, then one per pool port and
    WARMUP more); each with its start's and stop's requests."""
    runs: list[dict[str, Any]] = []
    one(counting, network, f"{prefix}w0")
    warmup = WARMUP + _pool_ports(network)
    for i in range(warmup):
        one(counting, network, f"{prefix}w{i + 1}")
    for i in range(reps):
        runs.append(one(counting, network, f"{prefix}c{i}"))
    return runs


def one(counting: Counting, network: str, name: str) -> dict[str, Any]:
    """``docker run -d`` then ``docker rm -f``, each followed by a quiet daemon."""
    started = time.time()
    ran = docker("run", "-d", "--name", name, f"--net={network}", IMAGE, "sleep", "600")
    if not ran.ok:
        raise RuntimeError(f"docker run failed: {ran.error}")
    up = counting.settle(ran.returned)
    status = _status(counting.between(started, up))
    gone = docker("rm", "-f", name)
    if not gone.ok:
        raise RuntimeError(f"docker rm failed: {gone.error}")
    down = counting.settle(gone.returned)
    start = counting.between(started, gone.started)
    stop = [c for c in counting.between(gone.started, down) if c.arrived > gone.started]
    return {
        "start_sync": sum(c.arrived <= ran.returned for c in start),
        "start": _kinds(start),
        "stop_sync": sum(c.arrived <= gone.returned for c in stop),
        "stop": _kinds(stop),
        "total": len(start) + len(stop),
        "reconcile": sum(map(periodic, start + stop)),
        "quiet_after_start_s": round(up - ran.returned, 2),
        "port_status": status,
    }


def measure(
    driver: str, prefix: str, reps: int, port: int, ipams: list[str], code: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {"code": str(code)}
    with private_driver(driver, port, code) as (counting, serve_log):
        for ipam in ipams:
            network = f"{prefix}{ipam}"
            subnet = f"10.218.{IPAMS[ipam]}.0/24"
            argv = ["network", "create", "-d", driver, "--subnet", subnet, network]
            if ipam == "kuryr":
                argv[4:4] = ["--ipam-driver", driver]
            made = docker(*argv)
            if not made.ok:
                raise RuntimeError(f"network create failed: {made.error}")
            try:
                counting.settle(made.returned)
                runs = lifecycles(counting, network, f"{prefix}{ipam}-", reps)
            finally:
                neutron_id = _neutron_network(network)
                docker("network", "rm", network)
                _removed(neutron_id)
            kinds: Counter[str] = Counter()
            for run in runs:
                for call in run["start"] + run["stop"]:
                    method, path = call.split(" ", 1)
                    kinds[f"{method} {kind_of_path(path)}"] += 1
            results[ipam] = {
                "lifecycles": len(runs),
                "mean_total": sum(r["total"] for r in runs) / len(runs),
                "mean_without_reconcile": sum(r["total"] - r["reconcile"] for r in runs)
                / len(runs),
                "statuses": dict(Counter(r["port_status"] for r in runs)),
                "sync": sum(r["start_sync"] + r["stop_sync"] for r in runs),
                "kinds": dict(kinds.most_common()),
                "runs": runs,
            }
        results["daemon_log"] = str(serve_log)
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_calls")
    parser.add_argument("reps", type=int, nargs="?", default=10)
    parser.add_argument("prefix", nargs="?", default="n18req-")
    parser.add_argument("--ipams", default=",".join(IPAMS))
    parser.add_argument("--code", type=Path, default=REPO, help="the Kuryr checkout to run")
    parser.add_argument("--port", type=int, default=19718, help="the counting proxy's port")
    args = parser.parse_args(argv)
    driver = f"{args.prefix}lc"
    ipams = args.ipams.split(",")
    result = measure(driver, args.prefix, args.reps, args.port, ipams, args.code.resolve())
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
