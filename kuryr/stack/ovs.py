"""Open vSwitch with the userspace (netdev) datapath, started without ovs-ctl (which insists
on the kernel module)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from kuryr.stack import hostplan, netdev, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import OVS_RUN, OVS_SOCK, Layout

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def vsctl(*args: str, timeout: float = 10.0) -> str:
    return proc.run("ovs", ["ovs-vsctl", f"--timeout={int(timeout)}", *args], timeout + 2)


def hostname() -> str:
    return socket.gethostname()


class OpenVSwitch:
    name = "ovs"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.db = layout.sub("ovs") / "conf.db"
        self.db_pidfile = OVS_RUN / "ovsdb-server.pid"
        self.vswitchd_pidfile = OVS_RUN / "ovs-vswitchd.pid"

    @property
    def log(self) -> Path:
        return self.layout.log("ovs-vswitchd")

    def start(self) -> None:
        OVS_RUN.mkdir(parents=True, exist_ok=True)
        if proc.running(self.db_pidfile, "ovsdb-server") is None:
            self._start_ovsdb()
        self._configure()
        if proc.running(self.vswitchd_pidfile, "ovs-vswitchd") is None:
            # A killed vswitchd leaves its taps; a fresh one re-creates them cleanly.
            netdev.delete_links(self.created_links(internal_only=True))
            proc.run(
                "ovs",
                [
                    "ovs-vswitchd",
                    f"unix:{OVS_SOCK}",
                    f"--pidfile={self.vswitchd_pidfile}",
                    "--detach",
                    f"--log-file={self.log}",
                ],
                timeout=30,
                log=self.log,
            )

    def _start_ovsdb(self) -> None:
        log = self.layout.log("ovsdb-server")
        self.db.parent.mkdir(parents=True, exist_ok=True)
        OVS_SOCK.unlink(missing_ok=True)
        if not self.db.exists():
            proc.run("ovs", ["ovsdb-tool", "create", str(self.db), str(SCHEMA)])
        argv = [
            "ovsdb-server",
            str(self.db),
            f"--remote=punix:{OVS_SOCK}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
            f"--pidfile={self.db_pidfile}",
            "--detach",
            f"--log-file={log}",
        ]
        try:
            proc.run("ovs", argv, timeout=20, log=log)
        except StackError:
            # The database only holds what up writes again: a damaged one is recreated.
            self.db.unlink()
            proc.run("ovs", ["ovsdb-tool", "create", str(self.db), str(SCHEMA)])
            proc.run("ovs", argv, timeout=20, log=log)
        vsctl("--no-wait", "init")

    def system_id(self) -> str:
        current = vsctl("--no-wait", "get", "open_vswitch", ".", "external-ids").strip()
        for item in current.strip("{}").split(", "):
            key, _, value = item.partition("=")
            if key == "system-id" and value:
                return value.strip('"')
        return str(uuid.uuid4())

    def _configure(self) -> None:
        # userspace-tso-enable is read once when ovs-vswitchd starts, so it is set first.
        vsctl(
            "--no-wait",
            "set",
            "open_vswitch",
            ".",
            "other_config:userspace-tso-enable=true",
            f"external-ids:system-id={self.system_id()}",
            f"external-ids:hostname={hostname()}",
            "external-ids:ovn-remote=unix:/var/run/ovn/ovnsb_db.sock",
            "external-ids:ovn-encap-type=geneve",
            # Moved to the underlay while simulated hosts exist (kuryr.stack.underlay).
            f"external-ids:ovn-encap-ip={hostplan.encap_ip(hostplan.hosts_dir(self.layout.root).is_dir())}",
            "external-ids:ovn-bridge-datapath-type=netdev",
        )

    def created_links(self, internal_only: bool = False) -> list[str]:
        """Host links that belong to OVS: its bridges' taps and ovs-netdev, plus (unless
        ``internal_only``) the ports plugged into its bridges, such as container veths."""
        if proc.running(self.db_pidfile, "ovsdb-server") is None:
            return ["br-int", "ovs-netdev"]
        query = ["find", "interface", "type=internal"] if internal_only else ["list", "interface"]
        names = vsctl("--no-wait", "--bare", "--columns=name", *query).split()
        return sorted({*names, "br-int", "ovs-netdev"})

    def stop(self) -> None:
        links = self.created_links()
        proc.stop_pidfile(self.vswitchd_pidfile, "ovs-vswitchd")
        netdev.delete_links(links)
        proc.stop_pidfile(self.db_pidfile, "ovsdb-server")
        OVS_SOCK.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        if proc.running(self.db_pidfile, "ovsdb-server") is None:
            return False, "ovsdb-server is not running"
        if proc.running(self.vswitchd_pidfile, "ovs-vswitchd") is None:
            return False, "ovs-vswitchd is not running"
        try:
            tso = vsctl("get", "open_vswitch", ".", "other_config:userspace-tso-enable", timeout=3)
        except StackError as exc:
            return False, exc.reason
        if tso.strip().strip('"') != "true":
            return False, "userspace-tso-enable is not set"
        return True, f"userspace datapath, db {OVS_SOCK}"

    def purge(self) -> None:
        """The database lives in the stack directory, removed with it."""
