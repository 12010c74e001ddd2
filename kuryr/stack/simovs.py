"""A simulated host's chassis: its own ovsdb-server and userspace ovs-vswitchd (br-int and a
br-phy with its underlay address) and ovn-controller, all in its network namespace.

Its ovn-controller reaches the central SB database over the SB's unix socket (filesystem
sockets cross network namespaces), so the shared stack needs no extra listener."""

from __future__ import annotations

import contextlib
import time
import urllib.error

from kuryr.stack import neutron_api, ovn, proc
from kuryr.stack.errors import StackError
from kuryr.stack.hostplan import INNER_LINK, PHY_BRIDGE, SimHost
from kuryr.stack.layout import SB_SOCK
from kuryr.stack.ovs import SCHEMA

# ovs-vswitchd recreates these taps; a killed one leaves them behind.
_INTERNAL_LINKS = ("br-int", PHY_BRIDGE, "ovs-netdev")
AGENT_TIMEOUT = 30.0
# Seconds to wait for Neutron to see the chassis answer one nb_cfg move before the next move.
AGENT_RECHECK = 3.0


class SimChassis:
    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.name = f"{host.name}/ovs"
        self.marker = str(host.ovs_sock)
        self.db_pidfile = host.ovs_run / "ovsdb-server.pid"
        self.vswitchd_pidfile = host.ovs_run / "ovs-vswitchd.pid"
        self.controller_pidfile = host.ovs_run / "ovn-controller.pid"

    def _env(self) -> list[str]:
        run = str(self.host.ovs_run)
        return ["env", f"OVS_RUNDIR={run}", f"OVN_RUNDIR={run}"]

    def _in_netns(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.host.netns, *self._env(), *argv]

    def vsctl(self, *args: str, timeout: int = 10) -> str:
        return proc.run(
            self.name,
            ["ovs-vsctl", f"--db=unix:{self.host.ovs_sock}", f"--timeout={timeout}", *args],
            timeout + 2,
        )

    def start(self) -> bool:
        """Start what is not running; True when ovn-controller was (re)started."""
        self.host.ovs_run.mkdir(parents=True, exist_ok=True)
        self.host.logs.mkdir(parents=True, exist_ok=True)
        if proc.running(self.db_pidfile, self.marker) is None:
            self._start_ovsdb()
        self._configure()
        if proc.running(self.vswitchd_pidfile, self.marker) is None:
            self._start_vswitchd()
        self.vsctl(
            "--may-exist",
            "add-br",
            PHY_BRIDGE,
            "--",
            "set",
            "bridge",
            PHY_BRIDGE,
            "datapath_type=netdev",
            "--",
            "--may-exist",
            "add-port",
            PHY_BRIDGE,
            INNER_LINK,
        )
        netns = self.host.netns
        proc.run(
            self.name,
            ["ip", "-n", netns, "addr", "replace", self.host.underlay_cidr, "dev", PHY_BRIDGE],
        )
        proc.run(self.name, ["ip", "-n", netns, "link", "set", PHY_BRIDGE, "up"])
        restarted = proc.running(self.controller_pidfile, self.marker) is None
        if restarted:
            self._start_controller()
        if not proc.wait_for(lambda: self.check()[0], 30, 0.1):
            raise StackError(self.name, self.check()[1], self.host.log("ovn-controller"))
        return restarted

    def _start_ovsdb(self) -> None:
        db = self.host.ovs_db
        log = self.host.log("ovsdb-server")
        db.parent.mkdir(parents=True, exist_ok=True)
        self.host.ovs_sock.unlink(missing_ok=True)
        if not db.exists():
            proc.run(self.name, ["ovsdb-tool", "create", str(db), str(SCHEMA)])
        proc.run(
            self.name,
            self._in_netns(
                "ovsdb-server",
                str(db),
                f"--remote=punix:{self.host.ovs_sock}",
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                f"--pidfile={self.db_pidfile}",
                f"--unixctl={self.host.ovs_run / 'ovsdb-server.ctl'}",
                "--detach",
                f"--log-file={log}",
            ),
            timeout=20,
            log=log,
        )
        self.vsctl("--no-wait", "init")

    def _configure(self) -> None:
        # userspace-tso-enable is read once when ovs-vswitchd starts, so it is set first.
        # system-id = hostname = the name ports are bound to (binding:host_id).
        name = self.host.name
        self.vsctl(
            "--no-wait",
            "set",
            "open_vswitch",
            ".",
            "other_config:userspace-tso-enable=true",
            f"external-ids:system-id={name}",
            f"external-ids:hostname={name}",
            f"external-ids:ovn-remote=unix:{SB_SOCK}",
            "external-ids:ovn-encap-type=geneve",
            f"external-ids:ovn-encap-ip={self.host.underlay_ip}",
            "external-ids:ovn-bridge-datapath-type=netdev",
        )

    def _start_vswitchd(self) -> None:
        log = self.host.log("ovs-vswitchd")
        present = _links_in(self.host.netns)
        for link in _INTERNAL_LINKS:
            if link in present:
                proc.run(self.name, ["ip", "-n", self.host.netns, "link", "del", link])
        proc.run(
            self.name,
            self._in_netns(
                "ovs-vswitchd",
                f"unix:{self.host.ovs_sock}",
                f"--pidfile={self.vswitchd_pidfile}",
                # OVS 3.1's userspace conntrack can abort on an assertion under cross-host
                # traffic (conntrack.c conn_update_state); the monitor restarts it then.
                "--monitor",
                "--detach",
                f"--log-file={log}",
            ),
            timeout=30,
            log=log,
        )

    def _start_controller(self) -> None:
        log = self.host.log("ovn-controller")
        # ovn-controller 23.03 has no --unixctl: its socket is $OVN_RUNDIR/ovn-controller.<pid>.ctl.
        proc.run(
            self.name,
            self._in_netns(
                "ovn-controller",
                f"unix:{self.host.ovs_sock}",
                f"--pidfile={self.controller_pidfile}",
                "--detach",
                f"--log-file={log}",
            ),
            timeout=20,
            log=log,
        )

    def make_agent_alive(self) -> None:
        """Neutron reports a new chassis' agent dead until NB_Global.nb_cfg next moves (every
        agent_down_time/2) and refuses to bind ports to it meanwhile: move it now, and again
        until Neutron sees it. Neutron ignores the chassis' first answer (its nb_cfg going up
        from 0), so a move the chassis answered before its first one does not count."""
        deadline = time.monotonic() + AGENT_TIMEOUT
        while True:
            # Only as far as the SB: a dead chassis elsewhere would hold back --wait=hv.
            with contextlib.suppress(StackError):
                ovn.nbctl("--wait=sb", "sync", timeout=10)
            left = deadline - time.monotonic()
            if proc.wait_for(self.agent_alive, max(0.0, min(AGENT_RECHECK, left)), 0.2):
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    self.name,
                    f"Neutron does not report the OVN agent of {self.host.name} alive "
                    f"within {AGENT_TIMEOUT:.0f} s",
                    self.host.log("ovn-controller"),
                )

    def agent_alive(self) -> bool:
        try:
            agents = neutron_api.call("GET", f"/v2.0/agents?host={self.host.name}")["agents"]
        except (OSError, ValueError, urllib.error.URLError):
            return False
        return any(agent.get("alive") for agent in agents)

    def forget(self) -> None:
        """Drop the chassis from the SB and its agent from Neutron (Neutron keeps agents in
        memory until deleted through its API, not when the chassis goes)."""
        ovn.sbctl("--if-exists", "chassis-del", self.host.name)
        try:
            agents = neutron_api.call("GET", f"/v2.0/agents?host={self.host.name}")["agents"]
            for agent in agents:
                neutron_api.call("DELETE", f"/v2.0/agents/{agent['id']}")
        except (OSError, ValueError, urllib.error.URLError) as exc:
            raise StackError(self.name, f"cannot delete the Neutron agent: {exc}") from exc

    def stop(self) -> None:
        """ovn-controller first ('exit' deletes its chassis), then vswitchd, then the DB."""
        run = ["env", f"OVS_RUNDIR={self.host.ovs_run}", f"OVN_RUNDIR={self.host.ovs_run}"]
        if proc.running(self.controller_pidfile, self.marker) is not None:
            _quietly(self.name, [*run, "ovn-appctl", "-t", "ovn-controller", "exit"])
        proc.stop_pidfile(self.controller_pidfile, self.marker)
        if proc.running(self.vswitchd_pidfile, self.marker) is not None:
            _quietly(self.name, [*run, "ovs-appctl", "-t", "ovs-vswitchd", "exit", "--cleanup"])
        proc.stop_pidfile(self.vswitchd_pidfile, self.marker)
        proc.stop_pidfile(self.db_pidfile, self.marker)
        self.host.ovs_sock.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        for what, pidfile in (
            ("ovsdb-server", self.db_pidfile),
            ("ovs-vswitchd", self.vswitchd_pidfile),
            ("ovn-controller", self.controller_pidfile),
        ):
            if proc.running(pidfile, self.marker) is None:
                return False, f"{what} is not running"
        try:
            dp_type = self.vsctl(
                "--if-exists", "get", "bridge", "br-int", "datapath_type", timeout=3
            )
            found = ovn.sbctl(
                "--bare",
                "--columns=hostname",
                "find",
                "chassis",
                f"name={self.host.name}",
                timeout=3,
            )
        except StackError as exc:
            return False, exc.reason
        if dp_type.strip() != "netdev":
            return False, "br-int is missing or not on the netdev datapath"
        if not found.strip():
            return False, f"chassis {self.host.name} is not registered in the SB database"
        return True, f"chassis {self.host.name}, underlay {self.host.underlay_ip}"


def _links_in(netns: str) -> set[str]:
    try:
        out = proc.run("underlay", ["ip", "-n", netns, "-o", "link", "show"])
    except StackError:
        return set()
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _quietly(component: str, argv: list[str]) -> None:
    """An orderly exit request; the pidfile stop after it covers the case it fails."""
    with contextlib.suppress(StackError):
        proc.run(component, argv, timeout=10)
