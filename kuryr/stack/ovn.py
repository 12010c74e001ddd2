"""OVN: the NB and SB databases and ovn-northd (central), and ovn-controller (chassis).

The daemons are started directly rather than through ovn-ctl so that their databases and
logs live in the stack directory; sockets and pidfiles keep OVN's standard paths, which is
where ovn-nbctl, ovn-sbctl and ovn-appctl look."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kuryr.stack import ovs, ports, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import NB_PORT, NB_SOCK, OVN_RUN, OVS_SOCK, SB_PORT, SB_SOCK, Layout


@dataclass(frozen=True)
class _Database:
    name: str  # "nb" or "sb"
    schema: Path
    sock: Path
    port: int


_NB = _Database("nb", Path("/usr/share/ovn/ovn-nb.ovsschema"), NB_SOCK, NB_PORT)
_SB = _Database("sb", Path("/usr/share/ovn/ovn-sb.ovsschema"), SB_SOCK, SB_PORT)


def nbctl(*args: str, timeout: int = 10) -> str:
    return proc.run("ovn", ["ovn-nbctl", f"--timeout={timeout}", *args], timeout + 2)


def sbctl(*args: str, timeout: int = 10) -> str:
    return proc.run("ovn", ["ovn-sbctl", f"--timeout={timeout}", *args], timeout + 2)


class OvnCentral:
    name = "ovn-central"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.northd_pidfile = OVN_RUN / "ovn-northd.pid"

    @property
    def log(self) -> Path:
        return self.layout.log("ovn-northd")

    def _db_file(self, db: _Database) -> Path:
        return self.layout.sub("ovn") / f"ovn{db.name}_db.db"

    def _db_pidfile(self, db: _Database) -> Path:
        return OVN_RUN / f"ovn{db.name}_db.pid"

    def start(self) -> None:
        OVN_RUN.mkdir(parents=True, exist_ok=True)
        for db in (_NB, _SB):
            if proc.running(self._db_pidfile(db), "ovsdb-server") is None:
                self._start_db(db)
        if proc.running(self.northd_pidfile, "ovn-northd") is None:
            proc.run(
                self.name,
                [
                    "ovn-northd",
                    f"--ovnnb-db=unix:{NB_SOCK}",
                    f"--ovnsb-db=unix:{SB_SOCK}",
                    f"--pidfile={self.northd_pidfile}",
                    "--detach",
                    f"--log-file={self.log}",
                ],
                timeout=20,
                log=self.log,
            )

    def _start_db(self, db: _Database) -> None:
        log = self.layout.log(f"ovsdb-server-{db.name}")
        owner = ports.listener(db.port)
        if owner is not None:
            raise StackError(self.name, f"port {db.port} is taken by {ports.describe(owner)}", log)
        dbfile = self._db_file(db)
        dbfile.parent.mkdir(parents=True, exist_ok=True)
        db.sock.unlink(missing_ok=True)
        if not dbfile.exists():
            proc.run(self.name, ["ovsdb-tool", "create", str(dbfile), str(db.schema)])
        elif (
            proc.run(self.name, ["ovsdb-tool", "needs-conversion", str(dbfile), str(db.schema)])[:3]
            == "yes"
        ):
            proc.run(self.name, ["ovsdb-tool", "convert", str(dbfile), str(db.schema)])
        proc.run(
            self.name,
            [
                "ovsdb-server",
                str(dbfile),
                f"--remote=punix:{db.sock}",
                f"--remote=ptcp:{db.port}:127.0.0.1",
                f"--unixctl={OVN_RUN / f'ovn{db.name}_db.ctl'}",
                f"--pidfile={self._db_pidfile(db)}",
                "--detach",
                f"--log-file={log}",
            ],
            timeout=20,
            log=log,
        )

    def stop(self) -> None:
        proc.stop_pidfile(self.northd_pidfile, "ovn-northd")
        for db in (_NB, _SB):
            proc.stop_pidfile(self._db_pidfile(db), "ovsdb-server")
            db.sock.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        for db in (_NB, _SB):
            if proc.running(self._db_pidfile(db), "ovsdb-server") is None:
                return False, f"the {db.name.upper()} ovsdb-server is not running"
        if proc.running(self.northd_pidfile, "ovn-northd") is None:
            return False, "ovn-northd is not running"
        try:
            nbctl("--wait=sb", "sync", timeout=5)
        except StackError as exc:
            return False, exc.reason
        return True, f"NB tcp:127.0.0.1:{NB_PORT}, SB tcp:127.0.0.1:{SB_PORT}, northd in sync"

    def purge(self) -> None:
        """The databases live in the stack directory, removed with it."""


class OvnController:
    name = "ovn-controller"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.pidfile = OVN_RUN / "ovn-controller.pid"

    @property
    def log(self) -> Path:
        return self.layout.log("ovn-controller")

    def start(self) -> None:
        if proc.running(self.pidfile, "ovn-controller") is None:
            proc.run(
                self.name,
                [
                    "ovn-controller",
                    f"unix:{OVS_SOCK}",
                    f"--pidfile={self.pidfile}",
                    "--detach",
                    f"--log-file={self.log}",
                ],
                timeout=20,
                log=self.log,
            )
        if not proc.wait_for(lambda: self.check()[0], 30, 0.2):
            raise StackError(self.name, self.check()[1], self.log)

    def stop(self) -> None:
        proc.stop_pidfile(self.pidfile, "ovn-controller")

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, "ovn-controller") is None:
            return False, "ovn-controller is not running"
        try:
            dp_type = ovs.vsctl(
                "--if-exists", "get", "bridge", "br-int", "datapath_type", timeout=3
            )
            chassis = ovs.vsctl("get", "open_vswitch", ".", "external-ids:system-id", timeout=3)
            found = sbctl(
                "--bare",
                "--columns=hostname",
                "find",
                "chassis",
                f"name={chassis.strip().strip(chr(34))}",
                timeout=3,
            )
        except StackError as exc:
            return False, exc.reason
        if dp_type.strip() != "netdev":
            return False, "br-int is missing or not on the netdev datapath"
        if not found.strip():
            return False, "the chassis is not registered in the SB database"
        return True, f"chassis {found.strip()} in SB, br-int on the netdev datapath"

    def purge(self) -> None:
        """Nothing outside the stack directory."""
