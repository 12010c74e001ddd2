"""The nested phase of ``make bench``, also run alone as ``python -m bench.nested`` (which
writes its figures into docs/benchmarks.json and the "Nested mode" section of
docs/benchmarks.md, leaving the rest of both as they are).

In each simulated VM of ``kuryr stack up --vms 2`` (vm1 in macvlan mode, vm2 in vlan mode;
README: Simulated VMs on one machine), against that VM's own dockerd:

- ``docker run --rm kuryr/busybox true`` on a Docker bridge network of the VM and on a
  Kuryr network (Kuryr IPAM) of the VM, interleaved after a warm-up: median, p90 and the
  ratio Kuryr / bridge (issue 15's target: at most 1.3x);
- the Neutron requests of ``docker run --rm`` on the Kuryr network, the VM's daemon
  restarted behind a counting proxy inside the VM (bench.mhcount) and put back after:
  "sync" are those a Docker request waited for (they carry its id: bench.calls), which a
  pool hit should not need;
- nested kuryr-libnetwork is not measured (NESTED_KURYRLIB says why).

In macvlan mode the Kuryr network is the VMs' own Neutron network (a container's address
travels on the VM's port); in vlan mode it is a Neutron network the phase makes and deletes.
When no VM runs, the phase starts vm1 and vm2 (only them: the machine's stack is left as it
runs) and removes them at the end; VMs that were up are used and left up. Everything it
makes is named ``nbench-``."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import machine, mhcount, mhhosts, multihost, nested_report, neutron, phase_cli
from bench.dockercli import IMAGE, Outcome
from bench.mhhosts import Host
from bench.stats import ratio
from kuryr import naming
from kuryr.stack import lifecycle, vmplan, vms
from kuryr.stack.hostplan import SimHost
from kuryr.stack.layout import Layout
from kuryr.stack.simdocker import SimDaemon

REPO = Path(__file__).resolve().parent.parent
PREFIX = "nbench-"
RUN = secrets.token_hex(3)
WORKDIR = REPO / "bench" / "results" / "nested"
VMS = 2
# The vlan VM's network: outside the default pools, the VMs' 10.99 and the other phases'.
VLAN_BLOCK = "10.236"
TARGET = nested_report.TARGET
SETTLE_LIMIT_S = nested_report.SETTLE_LIMIT_S
GONE_S = 60.0
NESTED_KURYRLIB = (
    "not measured: kuryr-libnetwork would have to run inside each VM (its network and mount"
    " namespaces, its spec in the VM's plugin directory, its nested config), which this bench"
    " does not set up; and its vlan binding (kuryr.lib.binding.drivers.vlan) makes 802.1Q"
    " devices, which this machine's kernel lacks (no 8021q module: the stack's vlan VM plugs"
    " containers into an OVS bridge instead)"
)


@dataclass(frozen=True)
class Settings:
    runs: int = 20
    warmup: int = 2
    count_reps: int = 6
    budget_s: float = 600.0


@dataclass(frozen=True)
class Vm:
    """One VM of ``kuryr stack hosts --json``: a host for Docker, its mode and its port."""

    host: Host
    mode: str
    port_id: str
    trunk_id: str


def vms_of(described: list[dict[str, Any]]) -> list[Vm]:
    rows = [row for row in described if row.get("kind") == "vm"]
    return [
        Vm(host, str(row["mode"]), str(row.get("port_id", "")), str(row.get("trunk_id", "")))
        for host, row in zip(mhhosts.parse(rows), rows, strict=True)
    ]


def described() -> list[dict[str, Any]]:
    listed = mhhosts.kuryr("stack", "hosts", "--json", timeout=60)
    if not listed.ok:
        raise RuntimeError(f"kuryr stack hosts --json failed: {listed.stderr.strip()[-300:]}")
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    return rows


def kuryr_args(mode: str, cidr: str, network: str) -> tuple[str, ...]:
    return (
        "-d", "kuryr", "--ipam-driver", "kuryr", "--subnet", cidr,
        "-o", f"neutron.net.name={network}",
    )  # fmt: skip


def ratios(bridge: dict[str, Any] | None, kuryr: dict[str, Any] | None) -> dict[str, Any]:
    """Kuryr / bridge of the medians and of the p90s, and whether the median's meets TARGET."""
    b, k = bridge or {}, kuryr or {}
    median = ratio(k.get("median"), b.get("median"))
    return {
        "median": median,
        "p90": ratio(k.get("p90"), b.get("p90")),
        "target": TARGET,
        "met": None if median is None else median <= TARGET,
    }


def say(text: str) -> None:
    print(f"bench.nested: {text}", flush=True)


class VmCounting(mhcount.Counting):
    """mhcount's counting for the VMs' daemons: their files and config are a VM's."""

    def _vm(self, host: Host) -> vmplan.SimVm:
        found = next((v for v in vmplan.present(self.layout.root) if v.name == host.name), None)
        if found is None:
            raise RuntimeError(f"{host.name} is not a simulated VM")
        return found

    def _sim_host(self, host: Host) -> SimHost:
        return self._vm(host)

    def _sim_daemon(self, host: Host) -> SimDaemon:
        return vms.parts(self.layout, self._vm(host)).daemon


class Phase:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.deadline = time.monotonic() + settings.budget_s
        self.layout = Layout.resolve(None)
        self.results: dict[str, Any] = {}
        self.brought = False
        # Neutron networks the phase made (deleted at the end) and pools it may have caused.
        self.made_networks: list[str] = []
        self.cidrs: list[str] = []
        self.pools_before: set[str] = set()
        # Each VM port's subports and address pairs before the phase made anything.
        self.ports_before: dict[str, dict[str, int]] = {}

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        r = self.results
        r.update(date=multihost.now(), parameters=asdict(self.s), load_before=multihost.load())
        r["kuryr_commit"] = machine.versions(REPO)["kuryr_commit"]
        r["kuryrlib"] = {"error": NESTED_KURYRLIB}
        found: list[Vm] = []
        try:
            found = self._acquire()
            r["modes"] = {}
            for mode in vmplan.MODES:
                vm = next((v for v in found if v.mode == mode), None)
                if vm is None:
                    r["modes"][mode] = {"error": f"no VM in {mode} mode runs: left alone"}
                    continue
                say(f"{vm.host.name} ({mode}) ...")
                r["modes"][mode] = self._one(vm)
        except Exception as exc:
            r["error"] = f"{type(exc).__name__}: {exc}"
            say(f"failed: {r['error']}")
        finally:
            r["cleanup"] = self._cleanup(found)
            if self.brought:
                r.setdefault("lifecycle", {}).update(self._release())
        r["load_after"] = multihost.load()
        r["duration_s"] = round(time.monotonic() - began, 1)
        return r

    def _acquire(self) -> list[Vm]:
        found = vms_of(described())
        if found:
            self.results["lifecycle"] = {"skipped": "the VMs were up: used and left up"}
        else:
            say(f"starting {VMS} simulated VMs ...")
            self.brought = True
            began = time.monotonic()
            health = lifecycle.start_vms(self.layout, lifecycle.VmChoice(VMS))
            broken = [f"{h.name}: {h.detail}" for h in health if not h.healthy]
            self.results["lifecycle"] = {
                "up": {"seconds": round(time.monotonic() - began, 1), "broken": broken}
            }
            if broken:
                raise RuntimeError(f"the simulated VMs are unhealthy: {broken}")
            found = vms_of(described())
        self.results["vms"] = {v.host.name: v.mode for v in found}
        self.pools_before = {
            p["name"] for p in neutron.call("GET", "/v2.0/subnetpools")["subnetpools"]
        }
        for vm in found:
            multihost.clear_containers(vm.host, PREFIX)
            multihost.clear_networks(vm.host, PREFIX)
            self.ports_before[vm.host.name] = vm_port_state(vm)
        return found

    def _kuryr_network(self, mode: str) -> tuple[str, str]:
        """The Neutron network (name) and CIDR the mode's Kuryr network is on."""
        if mode == vmplan.MACVLAN:
            return vmplan.NETWORK, vmplan.SUBNET_CIDR
        name = f"{PREFIX}{mode}-{RUN}"
        made = neutron.call("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
        self.made_networks.append(made["id"])
        cidr = f"{VLAN_BLOCK}.{secrets.randbelow(250) + 1}.0/24"
        subnet = {"name": name, "network_id": made["id"], "ip_version": 4, "cidr": cidr}
        neutron.call("POST", "/v2.0/subnets", {"subnet": subnet})
        return name, cidr

    def _one(self, vm: Vm) -> dict[str, Any]:
        host = vm.host
        bridge, kuryr = f"{PREFIX}bridge-{RUN}", f"{PREFIX}kuryr-{RUN}"
        net_name, cidr = self._kuryr_network(vm.mode)
        self.cidrs.append(cidr)
        result: dict[str, Any] = {"vm": host.name, "cidr": cidr, "neutron_network": net_name}
        creates = {
            "bridge": host.docker("network", "create", bridge),
            "kuryr": host.docker("network", "create", *kuryr_args(vm.mode, cidr, net_name), kuryr),
        }
        result["create"] = {
            k: {"ok": o.ok, "seconds": round(o.elapsed, 2)} for k, o in creates.items()
        }
        for key, made in creates.items():
            if not made.ok:
                result["create"][key]["error"] = made.error
        networks = {k: n for k, n in (("bridge", bridge), ("kuryr", kuryr)) if creates[k].ok}
        result["settle_s"] = round(machine.wait_idle(limit=SETTLE_LIMIT_S), 1)
        result["run_rm"] = self._runs(host, networks)
        summaries = {k: (v.get("summary") or None) for k, v in result["run_rm"].items()}
        result["ratio"] = ratios(summaries.get("bridge"), summaries.get("kuryr"))
        if "kuryr" in networks and self.s.count_reps > 0:
            result["neutron_requests"] = self._count(host, kuryr)
        return result

    def _runs(self, host: Host, networks: dict[str, str]) -> dict[str, Any]:
        """Warm-up, then ``runs`` rounds, the networks taking turns (which goes first
        alternates)."""
        ran: dict[str, list[Outcome]] = {key: [] for key in networks}
        for round_ in range(self.s.warmup + self.s.runs):
            if time.monotonic() > self.deadline:
                break
            for key in multihost.order(list(networks), round_):
                done = host.docker("run", "--rm", "--net", networks[key], IMAGE, "true")
                if round_ >= self.s.warmup:
                    ran[key].append(done)
        return {key: multihost.timings(outcomes) for key, outcomes in ran.items()}

    def _count(self, host: Host, network: str) -> dict[str, Any]:
        counting = VmCounting([host], WORKDIR)
        result: dict[str, Any] = {"reps": self.s.count_reps}
        try:
            counting.start()
            mhcount.settle(counting.calls, time.time())
            # One unmeasured: the restarted daemon's first start.
            host.docker("run", "--rm", "--net", network, IMAGE, "true")
            mhcount.settle(counting.calls, time.time())
            runs = [
                counting.measure(host.docker("run", "--rm", "--net", network, IMAGE, "true"))
                for _ in range(self.s.count_reps)
            ]
            result.update(mhcount.summary(runs))
            result["disturbed"] = counting.disturbed()
        except (RuntimeError, OSError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            result["restore_notes"] = counting.restore()
        return result

    def _cleanup(self, found: Sequence[Vm]) -> dict[str, Any]:
        say("cleanup ...")
        notes: list[str] = []
        for vm in found:
            notes += multihost.clear_containers(vm.host, PREFIX)
            notes += multihost.clear_networks(vm.host, PREFIX)
        try:
            for network_id in self.made_networks:
                notes += _delete_when_free(network_id)
            for cidr in self.cidrs:
                notes += _drop_pool(cidr, self.pools_before)
            for vm in found:
                notes += self._port_as_before(vm)
        except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
            notes.append(f"Neutron could not be cleaned up: {exc}")
        return {"ok": not notes, "notes": notes}

    def _port_as_before(self, vm: Vm) -> list[str]:
        """The VM's daemon takes its ports out of the trunk (vlan) or the pairs off the VM
        port (macvlan) in the background after ``docker network rm``: awaited."""
        before = self.ports_before.get(vm.host.name)
        if before is None or multihost.wait_until(lambda: vm_port_state(vm) == before, GONE_S):
            return []
        return [f"{vm.host.name}'s port: {vm_port_state(vm)} after the phase, {before} before"]

    def _release(self) -> dict[str, Any]:
        say("removing the VMs it started ...")
        began = time.monotonic()
        errors = lifecycle.down(self.layout, vms_only=True)
        return {
            "down": {
                "seconds": round(time.monotonic() - began, 1),
                "errors": [str(e) for e in errors],
            }
        }


def _kuryr_ports(network_id: str) -> list[dict[str, Any]]:
    ports = neutron.call("GET", f"/v2.0/ports?network_id={network_id}")["ports"]
    owners = (naming.DEVICE_OWNER, naming.ANCHOR_OWNER, "trunk:subport")
    return [p for p in ports if p["device_owner"] in owners]


def _delete_when_free(network_id: str) -> list[str]:
    """The VM's daemon gives back its pool ports (out of the trunk first) in the background
    after ``docker network rm``: wait for that, then delete the network the phase made."""
    if not multihost.wait_until(lambda: not _kuryr_ports(network_id), GONE_S):
        left = len(_kuryr_ports(network_id))
        return [f"{left} Kuryr ports were left on network {network_id} after {GONE_S:g} s"]
    try:
        neutron.call("DELETE", f"/v2.0/networks/{network_id}")
    except urllib.error.HTTPError as exc:
        return [f"Neutron network {network_id} could not be deleted: HTTP {exc.code}"]
    return []


def _drop_pool(cidr: str, before: set[str]) -> list[str]:
    """The ``kuryrPool-<cidr>`` Kuryr's IPAM made for the run, once no subnet uses it."""
    name = naming.subnetpool_name(cidr)
    if name in before:
        return []
    for pool in neutron.call("GET", f"/v2.0/subnetpools?name={name}")["subnetpools"]:
        used = neutron.call("GET", f"/v2.0/subnets?subnetpool_id={pool['id']}")["subnets"]
        if used:
            continue
        try:
            neutron.call("DELETE", f"/v2.0/subnetpools/{pool['id']}")
        except urllib.error.HTTPError as exc:
            # Kuryr's own release may have deleted it meanwhile.
            if exc.code != 404:
                return [f"subnetpool {name} could not be deleted: HTTP {exc.code}"]
    return []


def vm_port_state(vm: Vm) -> dict[str, int]:
    """How many subports the VM's trunk carries and address pairs its port has: after the
    phase, as before it."""
    port = neutron.call("GET", f"/v2.0/ports/{vm.port_id}")["port"]
    trunk = neutron.call("GET", f"/v2.0/trunks/{vm.trunk_id}")["trunk"]
    return {"subports": len(trunk["sub_ports"]), "pairs": len(port["allowed_address_pairs"])}


def measure(settings: Settings | None = None) -> dict[str, Any]:
    return Phase(settings or Settings()).run()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return phase_cli.parse_args("nested", __doc__, Settings, argv)


def main(argv: Sequence[str] | None = None) -> int:
    return phase_cli.main("nested", parse_args(argv), Settings, measure, nested_report.write)


if __name__ == "__main__":
    sys.exit(main())
