"""Private PostgreSQL 15 clusters that a test or a benchmark starts, stops mid-traffic, starts again and removes:
the extra database servers of the fleet (DESIGN.md), never installed as services.

Why it is built this way:

- `initdb` + `pg_ctl` on a free port, with the data under the repository's `var/clusters/` (gitignored): nothing
  outside the checkout is touched, and the main server on 5432 is neither configured nor restarted. A cluster's
  directory is named after the run's slot (tests/support/parallel_runs.py) and, under pytest-xdist, the worker,
  so two runs (or workers) never share one. The Unix socket lives there too, not in /var/run/postgresql, where
  it would meet the main server's.
- The machine runs the suite as root and PostgreSQL refuses to run as root, so initdb and pg_ctl run as the
  OS user `postgres` (runuser); when the suite does not run as root, they run as its own user.
- Durability against a machine crash is off (fsync, full_page_writes; initdb --no-sync): a cluster lives for one
  run and is deleted afterwards, so a power cut may lose it whole. A server killed or stopped at once (`pg_ctl -m
  immediate`, as the fault tests and the soak do) loses no commit: synchronous_commit stays on, so a commit's WAL
  is in the kernel's hands before the client hears of it (with it off, a commit acknowledged in the last 200 ms
  before the kill was gone after the restart, and the soak counted a lost notification). It still stops and
  starts like a real server: the
  settings are passed on pg_ctl's command line, so `start_again()` brings the same data back with the same
  settings on the same port, where the clients configured with `url` expect it.
- Authentication: `postgres` is trusted (locally and from 127.0.0.1), so the superuser URL has the same shape as
  the main server's in pytest.ini and needs no secret. Every other role must give its password
  (scram-sha-256): the fleet stores a server's credentials, and only a server that checks them can show that a
  wrong one is refused. Each cluster makes two roles with random passwords: one with CREATEDB and CREATEROLE
  (what the platform needs on a server it manages: tenant databases, and a role of its own for each) and one with
  neither (to see a server refuse what the platform needs).
- A cluster belongs to the process that created it (an `owner` file: its pid and start time, which a reused pid
  does not match). A process removes its clusters when it exits (atexit; the fixture of tests/conftest.py does so
  at the end of the session); a process that cannot (SIGKILL, SIGTERM, a power cut) leaves a directory whose
  owner is gone, and the next session of the suite (tests/conftest.py) or the next start of any cluster stops
  that directory's postmaster (pg_ctl -m immediate) and deletes it. A running postmaster is recognised by its
  working directory (every PostgreSQL process runs in its data directory), so a stale postmaster.pid never gets
  an unrelated process signalled.
"""

import atexit
import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import psycopg
from psycopg import sql

from tests.support.ports import PortTaken, listens, start_listening


def newest_server_programs(installed=Path("/usr/lib/postgresql")):
    """The folder of initdb and pg_ctl: Debian installs each major version's under <installed>/<major>/bin, off
    PATH; the newest of those there (15 where none is, so that a message can name what is missing)."""
    majors = [p.parent.parent for p in installed.glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    return max(majors, key=lambda p: int(p.name), default=installed / "15") / "bin"


BIN = newest_server_programs()
ROOT = Path(__file__).resolve().parents[2]
CLUSTERS_DIRECTORY = ROOT / "var" / "clusters"
HOST = "127.0.0.1"
SUPERUSER = "postgres"
OS_USER = "postgres"  # who runs the server when the suite runs as root
CREATEDB_ROLE = "diquis_platform"
NO_CREATEDB_ROLE = "diquis_limited"
ADDRESS_IN_USE = "Address already in use"
SOCKET_PATH_MAX = 107  # sun_path, less its terminating NUL

HBA = f"""\
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       all                     trust
host    all       {SUPERUSER}  {HOST}/32  trust
host    all       all       {HOST}/32  scram-sha-256
"""

_started = {}  # directory -> PostgresCluster: the clusters this process created and has not removed


class ClusterError(RuntimeError):
    """A PostgreSQL command failed; the message carries its output and the end of the server's log."""


def run_label():
    """What a run's cluster directories are prefixed with: its slot, and its xdist worker under pytest-xdist
    (every worker takes the controller's slot); the pid outside the suite (a benchmark, a shell)."""
    slot = os.environ.get("DIQUIS_TEST_SLOT")
    if not slot:
        return f"p{os.getpid()}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{slot}-{worker}" if worker else slot


class PostgresCluster:
    """One private PostgreSQL server: `PostgresCluster.start("logical", logical=True)`, then `url`,
    `stop()`, `start_again()`, `remove()`. Also a context manager that removes it on exit."""

    def __init__(self, name, *, logical, max_connections=100):
        self.name = name
        self.logical = logical
        self.wal_level = "logical" if logical else "replica"
        self.max_connections = max_connections
        self.directory = CLUSTERS_DIRECTORY.resolve() / f"{run_label()}-{name}"
        self.data_directory = self.directory / "data"
        self.socket_directory = self.directory / "socket"
        self.log_path = self.directory / "server.log"
        self.host = HOST
        self.port = None  # chosen by the first start
        self._frozen = []  # the pids freeze() stopped
        self.passwords = {CREATEDB_ROLE: secrets.token_hex(16), NO_CREATEDB_ROLE: secrets.token_hex(16)}
        self._creator_pid = os.getpid()

    @classmethod
    def start(cls, name, *, logical, max_connections=100):
        """Create the cluster (initdb), start it on a free port and make its roles; return it running."""
        cluster = cls(name, logical=logical, max_connections=max_connections)
        cluster._claim_directory()
        try:
            cluster._initdb()
            cluster._start()
            cluster._create_roles()
        except BaseException:
            cluster.remove()
            raise
        return cluster

    def __repr__(self):
        return f"<PostgresCluster {self.name} wal_level={self.wal_level} port={self.port}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    # URLs and connections

    def url_as(self, role, password=None, database="postgres"):
        credentials = role if password is None else f"{role}:{quote(password, safe='')}"
        return f"postgres://{credentials}@{self.host}:{self.port}/{database}"

    @property
    def url(self):
        """The superuser, trusted: what a test uses to set up and to look."""
        return self.url_as(SUPERUSER)

    @property
    def createdb_url(self):
        """A role that logs in with its password and may create databases and roles (not a superuser)."""
        return self.url_as(CREATEDB_ROLE, self.passwords[CREATEDB_ROLE])

    @property
    def wrong_password_url(self):
        """The CREATEDB role with a password that is not its own: the server refuses it."""
        return self.url_as(CREATEDB_ROLE, "not-" + self.passwords[CREATEDB_ROLE])

    @property
    def no_createdb_url(self):
        """A role that logs in with its password but may not create databases."""
        return self.url_as(NO_CREATEDB_ROLE, self.passwords[NO_CREATEDB_ROLE])

    def connect(self, url=None, **kwargs):
        """A psycopg connection (autocommit) to `url`, the superuser's by default."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(url or self.url, **kwargs)

    # Life cycle

    def stop(self, mode="fast"):
        """pg_ctl stop: "smart" waits for the sessions, "fast" ends them, "immediate" is a crash (recovery at the
        next start). Return when the postmaster has exited: from then on, connecting is refused."""
        if self.running():
            self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")

    def start_again(self, timeout=30):
        """Start the same data directory again, on the same port (waiting, should someone else hold it)."""
        if not self.data_directory.is_dir():
            raise ClusterError(f"{self.name}: removed, nothing to start again ({self.directory})")
        if not self.running():
            start_listening(lambda port: self._start_on(port, timeout), port=self.port)

    def remove(self):
        """Stop the server if it runs (immediately: its data goes anyway) and delete its directory."""
        if self.directory.exists():
            _stop_postmaster_in(self.data_directory)
            shutil.rmtree(self.directory)
        _started.pop(self.directory, None)

    def running(self):
        return self.postmaster_pid() is not None

    def postmaster_pid(self):
        """The postmaster's pid while it runs (read from postmaster.pid, checked against the process), else None."""
        return _postmaster_of(self.data_directory)

    def processes(self):
        """The pids of every process of this server (postmaster, backends, background workers)."""
        return _processes_in(self.data_directory)

    def freeze(self):
        """Every process of the server stopped (SIGSTOP), the postmaster and each backend: sessions stay open and
        nothing answers on them, new connections wait unanswered (a host that stops answering)."""
        self._frozen = self.processes()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        """The processes freeze() stopped, running again (those gone meanwhile are skipped)."""
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    # Creation

    def _claim_directory(self):
        """Make the cluster's directory, this process's (after deleting a crashed run's leftover there)."""
        if self.directory in _started:
            raise ClusterError(f"{self.name}: this process already runs a cluster in {self.directory}")
        socket_path = self.socket_directory / ".s.PGSQL.65535.lock"
        if len(os.fsencode(socket_path)) > SOCKET_PATH_MAX:
            raise ClusterError(f"{self.directory}: too deep for a Unix socket path (name the cluster shorter)")
        remove_leftover_clusters(expect_free=self.directory)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.directory.parent.chmod(0o755)  # the OS user `postgres` must reach its cluster
        self.directory.mkdir()
        (self.directory / "owner").write_text(process_identity(os.getpid()))
        _started[self.directory] = self

    def _initdb(self):
        self.socket_directory.mkdir()
        _give_to_server_user(self.directory, self.socket_directory)
        initdb = [BIN / "initdb", "-D", self.data_directory, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"]
        self._run([*initdb, "--locale=C.UTF-8", "--no-sync", "--no-instructions"])
        hba = self.data_directory / "pg_hba.conf"
        hba.write_text(HBA)
        _give_to_server_user(hba)

    def _create_roles(self):
        statement = sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}")
        with self.connect() as connection:
            for role, createdb in ((CREATEDB_ROLE, "CREATEDB CREATEROLE"), (NO_CREATEDB_ROLE, "NOCREATEDB")):
                password = sql.Literal(self.passwords[role])
                connection.execute(statement.format(sql.Identifier(role), sql.SQL(createdb), password))

    # Starting

    def _start(self, timeout=30):
        start_listening(lambda port: self._start_on(port, timeout))

    def _server_options(self, port):
        settings = {
            "listen_addresses": HOST,
            "wal_level": self.wal_level,
            "max_connections": self.max_connections,
            "fsync": "off",
            "full_page_writes": "off",
        }
        options = ["-p", str(port), "-k", str(self.socket_directory)]
        for key, value in settings.items():
            options += ["-c", f"{key}={value}"]
        return shlex.join(options)  # pg_ctl hands -o to a shell

    def _start_on(self, port, timeout):
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        argv = ["start", "-w", "-t", str(timeout), "-l", self.log_path, "-o", self._server_options(port)]
        try:
            self._pg_ctl(*argv)
        except ClusterError:
            if ADDRESS_IN_USE in self._log_since(offset):
                raise PortTaken(port) from None
            raise
        pid = self.postmaster_pid()
        if pid is None or not listens(pid, port):
            self.stop("immediate")
            raise ClusterError(f"{self.name}: started but not listening on {port}\n{self._log_since(offset)}")
        self.port = port

    # Commands

    def _pg_ctl(self, *args):
        self._run([BIN / "pg_ctl", "-D", self.data_directory, *args])

    def _run(self, argv):
        completed = subprocess.run(
            _as_server_user([str(arg) for arg in argv]),
            cwd=self.directory,  # runuser keeps the working directory, which `postgres` must be able to enter
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise ClusterError(
                f"{self.name}: {Path(str(argv[0])).name} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n--- server log ---\n{self._log_since(0)[-3000:]}"
            )

    def _log_since(self, offset):
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def remove_leftover_clusters(directory=CLUSTERS_DIRECTORY, *, expect_free=None):
    """Stop and delete the clusters under `directory` whose owner process is gone (killed before it could
    remove them). `expect_free`, the directory a new cluster is about to take: a live owner there is an error,
    and without an owner file (a crash before it was written) it is a leftover too."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        owner = path / "owner"
        if owner.exists():
            if identity_alive(owner):
                if path == expect_free:
                    raise ClusterError(f"{path}: in use by the live process {owner.read_text().split()[0]}")
                continue
        elif path != expect_free:
            continue  # being created by a process that has not written its owner file yet
        _stop_postmaster_in(path / "data")
        shutil.rmtree(path, ignore_errors=True)


def _stop_postmaster_in(data_directory, timeout=30):
    """Stop the server running in `data_directory` at once (pg_ctl -m immediate), then kill any process still
    working there (a backend orphaned by a killed postmaster)."""
    if _postmaster_of(data_directory) is not None:
        pg_ctl = [str(BIN / "pg_ctl"), "-D", str(data_directory), "stop", "-m", "immediate", "-w", "-t", str(timeout)]
        subprocess.run(_as_server_user(pg_ctl), cwd="/", stdin=subprocess.DEVNULL, capture_output=True)
    deadline = time.monotonic() + timeout
    while pids := _processes_in(data_directory):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise ClusterError(f"{data_directory}: processes {pids} survive SIGKILL")
        time.sleep(0.05)


def _postmaster_of(data_directory):
    """The pid in postmaster.pid, if that process runs in `data_directory` (the file outlives a killed server)."""
    try:
        pid = int((data_directory / "postmaster.pid").read_text().split("\n", 1)[0])
        return pid if os.readlink(f"/proc/{pid}/cwd") == str(data_directory) else None
    except (OSError, ValueError):
        return None


def _processes_in(data_directory):
    """Every PostgreSQL process works in its data directory: the pids whose working directory it is."""
    target = str(data_directory)
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry.name}/cwd") == target:
                    pids.append(int(entry.name))
    return pids


def process_identity(pid):
    """`pid start-time`: a pid reused by another process after a crash has another start time."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}\n"


def identity_alive(owner_file):
    """The process whose identity (process_identity) `owner_file` holds still runs (not when the file is gone)."""
    try:
        recorded = owner_file.read_text()
        return process_identity(int(recorded.split()[0])) == recorded
    except (OSError, ValueError, IndexError):
        return False


def _as_server_user(argv):
    return ["runuser", "-u", OS_USER, "--", *argv] if os.geteuid() == 0 else argv


def _give_to_server_user(*paths):
    if os.geteuid() == 0:
        user = pwd.getpwnam(OS_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)


@atexit.register
def _remove_started_clusters():
    """A process that ends without removing its clusters (an exception, Ctrl-C) removes them here. A forked child
    inherits the list but not the clusters: only their creator removes them."""
    for cluster in list(_started.values()):
        if cluster._creator_pid == os.getpid():
            with contextlib.suppress(Exception):
                cluster.remove()


class ExtraPostgresServers(NamedTuple):
    """The fleet's two extra servers a test gets (tests/conftest.py, `extra_postgres_servers`)."""

    logical: PostgresCluster  # wal_level=logical: a move can copy from it with logical replication
    plain: PostgresCluster  # wal_level=replica: a move from it falls back to pg_dump | pg_restore

    @classmethod
    def start(cls):
        with contextlib.ExitStack() as started:
            logical = started.enter_context(PostgresCluster.start("logical", logical=True))
            plain = started.enter_context(PostgresCluster.start("plain", logical=False))
            started.pop_all()
        return cls(logical=logical, plain=plain)

    def remove(self):
        with contextlib.ExitStack() as removing:  # every cluster, even when removing one fails
            for cluster in self:
                removing.callback(cluster.remove)
