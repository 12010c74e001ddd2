"""PostgreSQL for Neutron (and Keystone): a cluster of its own (``15/kuryr``) with its data in
the stack directory, listening on 127.0.0.1 only, with a role and database ``neutron`` (and
``keystone``, made by :meth:`Postgres.ensure_database` when the stack runs Keystone)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from kuryr.stack import ports, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import POSTGRES_PORT, Layout

CLUSTER = "kuryr"
PG_ROOT = Path("/usr/lib/postgresql")
CONF_ROOT = Path("/etc/postgresql")


def version() -> str:
    """The newest installed PostgreSQL major version."""
    found = sorted((int(p.name) for p in PG_ROOT.glob("[0-9]*") if p.name.isdigit()), reverse=True)
    if not found:
        raise StackError("postgres", "PostgreSQL is not installed (run scripts/install-deps.sh)")
    return str(found[0])


class Postgres:
    name = "postgres"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.data = layout.sub("postgres")
        self.secret_file = layout.sub("postgres.secret")

    @property
    def log(self) -> Path:
        return self.layout.log("postgres")

    @property
    def url(self) -> str:
        return self.database_url("neutron")

    def database_url(self, name: str) -> str:
        """SQLAlchemy's URL of database ``name``, owned by the role of the same name."""
        return (
            f"postgresql+psycopg2://{name}:{self.password(name)}@127.0.0.1:{POSTGRES_PORT}/{name}"
        )

    def _secret_file(self, name: str) -> Path:
        # Neutron's keeps its first name: existing stacks hold their password there.
        return self.secret_file if name == "neutron" else self.layout.sub(f"postgres-{name}.secret")

    def password(self, name: str = "neutron") -> str:
        path = self._secret_file(name)
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path.read_text().strip()

    def _conf_dir(self) -> Path:
        return CONF_ROOT / version() / CLUSTER

    def _pidfile(self) -> Path:
        return self.data / "postmaster.pid"

    def _ctl(self, action: str, *extra: str) -> None:
        proc.run(
            self.name,
            ["pg_ctlcluster", version(), CLUSTER, action, *extra],
            timeout=60,
            log=self.log,
        )

    def _cluster_data(self) -> Path | None:
        """The data directory the existing cluster is configured with, if the cluster exists."""
        try:
            lines = (self._conf_dir() / "postgresql.conf").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "data_directory":
                return Path(value.split("#")[0].strip().strip("'"))
        return None

    def start(self) -> None:
        data = self._cluster_data()
        if data is not None and data != self.data and (data / "PG_VERSION").exists():
            raise StackError(
                self.name, f"cluster {version()}/{CLUSTER} belongs to another stack ({data})"
            )
        if data is not None and not (self.data / "PG_VERSION").exists():
            # The cluster's data was removed behind our back: start over.
            self._drop()
        if self._cluster_data() is None:
            self._create()
        if proc.running(self._pidfile(), "postgres") is None:
            # Backends of a killed postmaster hold its shared memory and block a restart.
            for pid in proc.find(f"postgres: {version()}/{CLUSTER}:"):
                proc.terminate(pid)
            # PostgreSQL refuses to start while its old postmaster is even a zombie.
            old = proc.read_pid(self._pidfile())
            if old is not None:
                proc.wait_for(lambda: not Path(f"/proc/{old}").exists(), 10)
            self._pidfile().unlink(missing_ok=True)
            owner = ports.listener(POSTGRES_PORT)
            if owner is not None:
                raise StackError(
                    self.name, f"port {POSTGRES_PORT} is taken by {ports.describe(owner)}", self.log
                )
            self._ctl("start")
        self.ensure_database("neutron")

    def _create(self) -> None:
        # pg_dropcluster leaves files it did not write, such as our conf.d snippet.
        shutil.rmtree(self._conf_dir(), ignore_errors=True)
        self.data.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data, "postgres", "postgres")
        self.data.chmod(0o700)
        proc.run(
            self.name,
            [
                "pg_createcluster",
                "--start-conf=manual",
                f"--port={POSTGRES_PORT}",
                f"--datadir={self.data}",
                f"--logfile={self.log}",
                version(),
                CLUSTER,
                "--",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
            timeout=60,
        )
        conf = self._conf_dir() / "conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "kuryr-stack.conf").write_text(
            "listen_addresses = '127.0.0.1'\nmax_connections = 200\nfsync = off\n"
        )
        self.log.touch()
        shutil.chown(self.log, "postgres", "postgres")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement as the superuser; its output, unaligned."""
        return self._psql(sql, database)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        return proc.run(
            self.name,
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "psql",
                "-X",
                "-q",
                "-t",
                "-A",
                "-p",
                str(POSTGRES_PORT),
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            timeout=30,
            log=self.log,
        ).strip()

    def ensure_database(self, name: str) -> None:
        """Role and database ``name`` (one of the stack's own names, never user input)."""
        if self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'") != "1":
            # The password is ours (hex), so it is safe to place in the statement.
            self._psql(f"CREATE ROLE {name} LOGIN PASSWORD '{self.password(name)}'")
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self._psql(f"CREATE DATABASE {name} OWNER {name}")

    def _drop(self) -> None:
        proc.run(
            self.name, ["pg_dropcluster", "--stop", version(), CLUSTER], timeout=60, log=self.log
        )
        shutil.rmtree(self._conf_dir(), ignore_errors=True)

    def stop(self) -> None:
        if proc.running(self._pidfile(), "postgres") is not None:
            self._ctl("stop", "--", "-m", "fast")

    def check(self) -> tuple[bool, str]:
        if proc.running(self._pidfile(), "postgres") is None:
            return False, "postgres is not running"
        try:
            proc.run(
                self.name,
                ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(POSTGRES_PORT)],
                timeout=5,
            )
        except StackError:
            return False, f"postgres does not accept connections on 127.0.0.1:{POSTGRES_PORT}"
        return True, f"cluster {version()}/{CLUSTER} on 127.0.0.1:{POSTGRES_PORT}"

    def purge(self) -> None:
        if self._cluster_data() is not None:
            self._drop()
        shutil.rmtree(self._conf_dir(), ignore_errors=True)
