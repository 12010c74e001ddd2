"""One benchmark run, start to finish: set up the reference driver and the networks, run
every scenario interleaved across drivers, count Neutron calls, tear down, write reports."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench import (
    counting,
    dockercli,
    kuryrlib,
    lag,
    machine,
    multihost,
    multihost_report,
    nested,
    neutron,
    params,
    procs,
    publish,
    report,
    scenarios,
)
from bench.drivers import ALL, KURYR, Driver
from bench.ourdaemon import Launch, OurDaemon
from kuryr.stack.layout import Layout

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class Disturbed(RuntimeError):
    """The shared stack changed under the run (dockerd restarted, networks gone): the
    figures measured since would describe that, not the drivers."""


class Watch:
    """What must stay as it was for the run's figures to mean something."""

    def __init__(self, ours: OurDaemon) -> None:
        self.dockerd_pidfile = Layout.resolve(None).pidfile("dockerd")
        self.dockerd = procs.read_pid(self.dockerd_pidfile)
        self.ours = ours
        self.kuryr_pids = {ours.pid()}
        self.networks: list[str] = []

    def check(self) -> None:
        self.kuryr_pids.add(self.ours.pid())
        if procs.read_pid(self.dockerd_pidfile) != self.dockerd:
            raise Disturbed("dockerd was restarted during the run")
        missing = [n for n in self.networks if dockercli.network_missing(n)]
        if missing:
            raise Disturbed(f"networks vanished during the run: {', '.join(sorted(missing))}")


def _phase(name: str, timings: dict[str, float], watch: Watch, work: Callable[[], T]) -> T:
    print(f"bench: {name} ...", flush=True)
    started = time.monotonic()
    try:
        return work()
    finally:
        timings[name] = round(time.monotonic() - started, 1)
        print(f"bench: {name} took {timings[name]} s", flush=True)
        watch.check()


def _create_networks(drivers: Sequence[Driver]) -> tuple[list[Driver], dict[str, str]]:
    """Networks for every driver; a driver whose network cannot be made is left out, with
    the error it gave."""
    usable: list[Driver] = []
    failed: dict[str, str] = {}
    for driver in drivers:
        command = driver.create_command(driver.network)
        if command is not None:
            made = dockercli.docker(*command)
            if not made.ok:
                failed[driver.key] = made.error
                continue
        usable.append(driver)
    return usable, failed


def _peak_rss(reference: kuryrlib.Reference, ours: OurDaemon) -> dict[str, int | None]:
    dockerd = procs.read_pid(Layout.resolve(None).pidfile("dockerd"))
    pids = {"kuryr": ours.pid(), "kuryrlib": reference.pid(), "dockerd": dockerd}
    return {name: procs.peak_rss_kib(pid) if pid else None for name, pid in pids.items()}


def _count_calls(
    drivers: Sequence[Driver],
    reference: kuryrlib.Reference,
    ours: OurDaemon,
    reps: int,
    workdir: Path,
) -> dict[str, Any]:
    """Point each daemon at the counting proxy, count, and put ours back as it was (the
    reference daemon is stopped at the end of the run anyway)."""
    proxy = counting.Proxy(
        workdir / "neutron-calls.jsonl", workdir / "proxy.pid", neutron.NEUTRON_URL
    )
    redirect = _Redirect(ours, proxy.endpoint("kuryr"), workdir / "kuryr-counting.conf")
    counted: dict[str, Any] = {}
    proxy.start()
    try:
        if any(d.daemon == "kuryrlib" for d in drivers):
            reference.start(proxy.endpoint("kuryrlib"))
        for driver in drivers:
            counted[driver.key] = _count_one(proxy, driver, reps, redirect)
    finally:
        redirect.restore()
        proxy.stop()
    return counted


class _Redirect:
    """Our daemon restarted with its Neutron endpoint on the proxy, and put back after.

    Another engineer's `kuryr stack up` restarts the daemon with its usual config when the
    code changed; calls made then bypass the proxy, so such a window is detected and the
    count redone."""

    def __init__(self, ours: OurDaemon, endpoint: str, config_copy: Path) -> None:
        self.ours = ours
        self.endpoint = endpoint
        self.config_copy = config_copy
        self.launch: Launch | None = None
        self.pid: int | None = None

    def ensure(self) -> bool:
        """True once the daemon runs through the proxy (False: it does not run at all)."""
        current = self.ours.pid()
        if current is not None and current == self.pid:
            return True
        self.launch = self.ours.launch()
        if self.launch is None:
            return False
        self.pid = self.ours.restart_through(self.launch, self.endpoint, self.config_copy)
        return True

    def intact(self) -> bool:
        return self.pid is not None and self.ours.pid() == self.pid

    def restore(self) -> None:
        # A daemon someone else restarted meanwhile already runs as usual: leave it.
        if self.launch is not None and self.ours.pid() in (None, self.pid):
            self.ours.restore(self.launch)


def _count_one(
    proxy: counting.Proxy, driver: Driver, reps: int, redirect: _Redirect
) -> dict[str, Any]:
    if driver.daemon != "kuryr":
        return counting.count_driver(proxy, driver, reps)
    for _ in range(3):
        if not redirect.ensure():
            return {"error": "the Kuryr daemon is not running"}
        result = counting.count_driver(proxy, driver, reps)
        if redirect.intact():
            return result
        dockercli.cleanup(f"{dockercli.PREFIX}cnt-")
    return {"error": "the Kuryr daemon was restarted by someone else during each of 3 tries"}


def main(argv: Sequence[str] | None = None) -> int:
    args = params.parse_args(argv, __doc__)
    begun = time.monotonic()
    date = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    if not neutron.answers():
        raise SystemExit("bench: Neutron does not answer on 127.0.0.1:9696: run `kuryr stack up`")
    wanted = {k for k in args.only.split(",") if k}
    drivers = [d for d in ALL if not wanted or d.key in wanted]
    reference = kuryrlib.Reference.default()
    ours = OurDaemon()
    phases: dict[str, float] = {}
    watch = Watch(ours)
    results: dict[str, Any] = {
        "date": date,
        "machine": machine.describe(),
        "versions": machine.versions(REPO),
        "phases_s": phases,
        "parameters": params.of(args).as_dict(),
        "kuryr_config": ours.measured_config(),
    }
    try:
        if any(d.daemon == "kuryrlib" for d in drivers):
            _phase("install kuryr-libnetwork", phases, watch, reference.install)
            reference.ensure_pools()
            reference.start(neutron.NEUTRON_URL)
            results["versions"]["kuryr_libnetwork"] = reference.installed_version() or "?"
        dockercli.cleanup()
        usable, failed = _phase("create networks", phases, watch, lambda: _create_networks(drivers))
        watch.networks = [d.network for d in usable if d.create_args is not None]
        results["drivers"] = {
            d.key: {
                "title": d.title,
                "create": d.create_command(d.network),
                "error": failed.get(d.key),
            }
            for d in drivers
        }
        results["connectivity"] = _phase(
            "connectivity",
            phases,
            watch,
            lambda: {d.key: scenarios.connectivity(d) for d in usable if d.create_args},
        )
        results["start_latency"] = _phase(
            "start latency",
            phases,
            watch,
            lambda: scenarios.start_latency(usable, args.runs, args.warmup),
        )
        if KURYR in usable:
            results["publish"] = _phase(
                "docker run -p",
                phases,
                watch,
                lambda: publish.measure(args.runs, args.warmup),
            )
        results["network_lifecycle"] = _phase(
            "network create/rm",
            phases,
            watch,
            lambda: scenarios.network_lifecycle(usable, args.net_reps),
        )
        results["parallel"] = _phase(
            "parallel starts",
            phases,
            watch,
            lambda: scenarios.parallel_starts(usable, args.parallel, args.parallel_reps),
        )
        sizes = list(args.scale)
        results["scale"] = _phase(
            "scale",
            phases,
            watch,
            lambda: scenarios.scale(
                usable, sizes, args.scale_probes, args.fill_width, args.fill_budget
            ),
        )
        results["peak_rss_kib"] = _peak_rss(reference, ours)
        for driver in usable:
            if driver.create_args is not None:
                removed = dockercli.docker("network", "rm", driver.network)
                if not removed.ok:
                    results.setdefault("rm_errors", {})[driver.key] = removed.error
        watch.networks = []
        # Restarts of our daemon by others (code changed) show as errors in the rows.
        results["kuryr_daemon_pids_seen"] = sorted(p for p in watch.kuryr_pids if p)
        counted_drivers = [d for d in usable if d.daemon is not None]
        results["neutron_calls"] = _phase(
            "neutron calls",
            phases,
            watch,
            lambda: _count_calls(counted_drivers, reference, ours, args.count_reps, reference.root),
        )
        if KURYR in usable:
            results["bookkeeping_lag"] = _phase(
                "bookkeeping lag",
                phases,
                watch,
                lambda: lag.measure(KURYR, ours, args.lag_single, args.lag_burst, reference.root),
            )
        if args.multihost:
            # Last: adding simulated hosts restarts the machine's daemon (TX checksum offload
            # off while hosts exist), which no single-host figure may see.
            results["multihost"] = _phase("several hosts", phases, watch, multihost.measure)
        if args.nested:
            # After the hosts are gone: the multi-host phase wants no simulated VM beside them.
            results["nested"] = _phase("nested", phases, watch, nested.measure)
    except Disturbed as exc:
        print(f"bench: {exc}: no report written; run again on a quiet stack", flush=True)
        _save(results, args.results)
        return 1
    finally:
        dockercli.cleanup()
        # By name too: a listing that failed while the stack was disturbed misses them.
        for driver in drivers:
            if driver.create_args is not None:
                dockercli.docker("network", "rm", driver.network)
        reference.stop()
    results["duration_s"] = round(time.monotonic() - begun, 1)
    results["derived"] = report.derive(results)
    previous = multihost_report.previous_of(args.docs)
    multihost_report.carry_over(results.get("multihost"), previous.get("multihost"))
    # The 500-container run is made apart (bench.large): its last figures stay.
    if "large" in previous:
        results["large"] = previous["large"]
    write(results, args.docs, args.results)
    return 0


def _save(results: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, sort_keys=True) + "\n"
    (out / "latest.json").write_text(text)
    return text


def write(results: dict[str, Any], docs: Path, out: Path) -> None:
    text = _save(results, out)
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "benchmarks.json").write_text(text)
    (docs / "benchmarks.md").write_text(report.render(results))
    print(f"bench: wrote {docs / 'benchmarks.md'} and {docs / 'benchmarks.json'}")
