"""A real PgBouncer (Debian's package) in front of a database server, for a test: the product's own configuration
(tenants.pgbouncer.write_config) under the repository's var/pgbouncer/, on a free port, stopped and its files
removed afterwards, failed test or not.

PgBouncer refuses to run as root: when the suite does, it runs as the OS user that runs the private clusters
(tests/support/postgres_clusters.py), which then owns its directory. Its start is confirmed by the process itself
listening on the port (tests/support/ports.py), found through its pidfile (runuser is its parent).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time

import psycopg
import pytest

from tenants.pgbouncer import admin_password, write_config
from tenants.provisioning.pgbouncer_auth import AUTH_ROLE

from .ports import ADDRESS_IN_USE, PortTaken, listens, start_listening
from .postgres_clusters import ROOT, _as_server_user, _give_to_server_user, run_label

DIRECTORY = ROOT / "var" / "pgbouncer"
EXECUTABLE = shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
START_TIMEOUT = 10


def require_pgbouncer():
    if EXECUTABLE is None:
        pytest.skip("PgBouncer is not installed (Debian: apt-get install pgbouncer; .ci/run does it when root)")


class Bouncer:
    """One PgBouncer process for `server`: `files` (tenants.pgbouncer.BouncerFiles), `stop()`, `start_again()`,
    `show(what)` on its admin console."""

    def __init__(self, server, name):
        self.server = server
        self.directory = DIRECTORY.resolve() / f"{run_label()}-{name}"
        self.files = None
        self.process = None

    @property
    def port(self):
        return self.files.listen_port

    @property
    def setting(self):
        """DIQUIS_PGBOUNCER's value for it, as the settings parse it."""
        return {self.server: (self.files.listen_host, self.files.listen_port)}

    def start(self):
        shutil.rmtree(self.directory, ignore_errors=True)
        start_listening(self._start_on)
        return self

    def _start_on(self, port):
        self.files = write_config(self.directory, server=self.server, listen_port=port)
        _give_to_server_user(self.directory, self.files.ini, self.files.auth_file)
        self._start_process()

    def _start_process(self):
        self.files.pidfile.unlink(missing_ok=True)
        log_offset = self.files.logfile.stat().st_size if self.files.logfile.exists() else 0
        self.process = subprocess.Popen(
            _as_server_user(self.files.command(EXECUTABLE)),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid is not None and listens(pid, self.port):
                return
            if self.process.poll() is not None:
                log = self.log(log_offset)
                if ADDRESS_IN_USE in log:
                    raise PortTaken(self.port)
                raise RuntimeError(f"pgbouncer exited ({self.process.returncode}):\n{log[-3000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer not listening on {self.port} within {START_TIMEOUT}s")

    def pid(self):
        with contextlib.suppress(OSError, ValueError):
            return int(self.files.pidfile.read_text().strip())
        return None

    def log(self, offset=0):
        with contextlib.suppress(OSError):
            return self.files.logfile.read_text(errors="replace")[offset:]
        return ""

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """At once (SIGTERM), waiting for it to exit and its port to be free."""
        if not self.running():
            return
        pid = self.pid()
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def start_again(self):
        """On the same port, where the clients expect it."""
        start_listening(lambda port: self._start_process(), port=self.port)

    def remove(self):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def admin(self):
        """A connection to the admin console (simple protocol only: a client-side-binding cursor)."""
        return psycopg.connect(
            host=self.files.listen_host,
            port=self.port,
            dbname="pgbouncer",
            user=AUTH_ROLE,
            password=admin_password(),
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        )

    def show(self, what):
        """SHOW POOLS, CLIENTS...: a list of dicts."""
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextlib.contextmanager
def running_pgbouncer(server, name="bouncer"):
    """A PgBouncer in front of database server `server` (of the catalog) for the block, gone afterwards."""
    require_pgbouncer()
    bouncer = Bouncer(server, name)
    try:
        yield bouncer.start()
    finally:
        bouncer.remove()
