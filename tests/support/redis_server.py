"""A private redis-server that a fault test may stop, kill, freeze and restart without touching anyone else's.

It listens on a free port of 127.0.0.1, keeps nothing on disk (`--save "" --appendonly no`), and is owned by
the test: `stop()` ends the process (everything in it is lost, as with a crashed Redis without persistence),
`start()` brings a fresh one up on the same port, so clients configured with `url` find it again (waiting, should
somebody else have taken the port meanwhile; the first start takes a free port, another one on a clash).
"""

import contextlib
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.ports import start_listening, wait_listening


class PrivateRedis:
    def __init__(self, log_dir, port=None, *, own_session=False, on_start=None):
        """`own_session`: out of the terminal's reach (as pg_ctl puts a PostgreSQL server), so that a Ctrl-C meant
        for a run does not end the server before the run's clean-up is done with it. `on_start`: called with the
        pid of every server started (the soak writes it down, for its reaper: tests/support/soak/reaper.py)."""
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt package redis-server)")
        self.port = port  # chosen by the first start() when None
        self.own_session = own_session
        self.on_start = on_start
        self.log_path = Path(log_dir) / "redis.log"
        self.process = None

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db=0):
        return redis.Redis.from_url(self.url(db), socket_connect_timeout=2, socket_timeout=5)

    def start(self, timeout=15):
        if self.alive():
            return self
        self.process = start_listening(lambda port: self._start_on(port, timeout), port=self.port)
        if self.on_start is not None:
            self.on_start(self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def _start_on(self, port, timeout):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            process = subprocess.Popen(
                [
                    "redis-server",
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_session,
            )  # fmt: skip

        def output():
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")

        try:
            wait_listening(process, port, output=output, timeout=timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
        self.port = port
        return process

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, sig=signal.SIGKILL):
        """End the server (SIGKILL by default: a crash; nothing it held survives)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)  # a frozen server cannot die of SIGTERM
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self):
        self.stop()
        return self.start()

    def freeze(self):
        """SIGSTOP: connections are accepted by the kernel but never answered (a hung server)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
