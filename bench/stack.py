"""The real stack of a benchmark: Daphne and RQ worker processes, with the bench's environment.

Built on the process helpers of the end-to-end tests (tests/support/live.py); adds what a benchmark needs:
a choice of settings module and Daphne flags, stopping a worker with everything it forked, and the
resident memory of each process.
"""

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support.live import Listening, Process, descendants
from tests.support.ports import free_port
from tests.support.web_processes import WebProcesses, start_web_processes

from . import environment

ROOT = environment.ROOT
LOG_DIR = ROOT / "var" / "bench-logs"


class BenchProcess(Process):
    def stop_all(self, timeout=20):
        """SIGTERM, then SIGKILL whatever is left of it and its children (an RQ work-horse, the scheduler)."""
        children = self.children() if self.alive() else []
        self.stop(signal.SIGTERM, timeout=timeout)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def rss_kib(pid):
    """Resident memory of one process, from /proc (0 if it is gone)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Web(Listening):
    """One Daphne process. `daphne_args` are extra flags (e.g. --websocket_connect_timeout); `env`, variables
    of its own (a setting of the variant measured); `tree`, another commit's code to serve (bench.other_tree)."""

    def __init__(self, sandbox, *, name="web", settings=None, daphne_args=(), endpoint=None, env=None, tree=None):
        self.port = free_port()
        argv = [sys.executable, "-m", "daphne"]
        if endpoint:
            argv += ["-e", endpoint.format(port=self.port)]
        else:
            argv += ["-b", "127.0.0.1", "-p", str(self.port)]
        argv += [*daphne_args, "diquis.asgi:application"]
        overrides = {
            **(tree.env if tree else {}),
            **(env or {}),
            **({"DJANGO_SETTINGS_MODULE": settings} if settings else {}),
        }
        cwd = tree.path if tree else ROOT  # `-m daphne` imports the application from its working directory
        self.process = sandbox.track(BenchProcess(name, argv, environment.child_env(**overrides), LOG_DIR, cwd=cwd))
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"daphne exited:\n{self.process.output()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/health", timeout=2)
                return
            time.sleep(0.2)
        raise RuntimeError("daphne did not answer within 60 s")

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        self.process.stop_all()


class BenchWebProcesses(WebProcesses, BenchProcess):
    """supervisord and its Daphne processes, stopped by the sandbox like any other (stop_all)."""


def start_web_processes_for(sandbox, count, *, name="web-processes"):
    """`count` Daphne processes on one port under supervisord (deploy/supervisord.conf), the production way."""
    return sandbox.track(
        start_web_processes(LOG_DIR, count, environment.child_env(), name=name, process_class=BenchWebProcesses)
    )


def start_worker(sandbox, name="worker", *, module=None, settings=None):
    """`manage.py rqworker --with-scheduler`, the documented command, or a bench variant (`-m module`)."""
    argv = [sys.executable, "-m", module] if module else [sys.executable, "manage.py", "rqworker", "--with-scheduler"]
    env = environment.child_env(**({"DJANGO_SETTINGS_MODULE": settings} if settings else {}))
    return sandbox.track(BenchProcess(name, argv, env, LOG_DIR))


def wait_for_workers(count, timeout=60):
    """Until `count` RQ workers have registered in Redis (they take a second or two to boot Django)."""
    from rq import Worker

    from jobs.enqueue import queue

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(Worker.all(connection=queue().connection)) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} worker(s) did not register within {timeout} s")


class PeakMemory:
    """Samples the resident memory of named processes (and everything they fork) until stopped.

    `peaks` maps each name to the largest RSS seen of the process itself, and `<name> children` to the
    largest RSS seen of any one of its children (an RQ work-horse or the scheduler).
    """

    def __init__(self, processes, interval=0.1):
        self.processes = dict(processes)
        self.interval = interval
        self.peaks = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _note(self, key, kib):
        self.peaks[key] = max(self.peaks.get(key, 0), kib)

    def _run(self):
        while not self._stop.wait(self.interval):
            for name, pid in self.processes.items():
                self._note(name, rss_kib(pid))
                for child in descendants(pid):
                    self._note(f"{name} children", rss_kib(child))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
