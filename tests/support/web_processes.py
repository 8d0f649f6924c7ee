"""Several Daphne processes on one port, started the production way: supervisord with deploy/supervisord.conf.

For the end-to-end tests and the benchmarks alike. Which process took a connection is read from /proc
(tests.support.ports.accepted_by), so a test knows its two websockets landed on two different processes.
"""

import contextlib
import http.client
import os
import sys
import time
from pathlib import Path

from tests.support.live import ROOT, Listening, Process
from tests.support.ports import ADDRESS_IN_USE, PortTaken, accepted_by, listens, start_listening

CONFIG = ROOT / "deploy" / "supervisord.conf"


def supervisord_argv(log_dir, name):
    """The documented command (bin/run's), with its pid file and log under `log_dir`."""
    return [
        *(sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(CONFIG)),
        *("-j", str(Path(log_dir) / f"{name}-supervisord.pid"), "-l", str(Path(log_dir) / f"{name}-supervisord.log")),
    ]


def supervisord_env(env, *, port, count):
    """`env` plus what the configuration reads, with this interpreter's `daphne` first on the PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
    return {**env, "PORT": str(port), "WEB_CONCURRENCY": str(count), "PATH": path}


def daphne_pids(supervisord_pid):
    """The Daphne processes supervisord runs (its only children)."""
    return [int(p) for p in Path(f"/proc/{supervisord_pid}/task/{supervisord_pid}/children").read_text().split()]


def wait_serving(supervisord, port, count, *, output, timeout=60):
    """Until supervisord runs `count` Daphne processes, each listening on `port` (a socket of its own:
    diquis.reuse_port), and one of them answers /health. PortTaken if the port is held by something else."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisord.poll() is not None:
            raise RuntimeError(f"supervisord exited:\n{output()[-3000:]}")
        if ADDRESS_IN_USE in output():
            raise PortTaken(port)
        pids = daphne_pids(supervisord.pid)
        if len(pids) == count and all(listens(pid, port) for pid in pids):
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/health")
                connection.getresponse().read()
                connection.close()
                return
        time.sleep(0.2)
    raise RuntimeError(f"{count} Daphne processes did not answer within {timeout} s:\n{output()[-3000:]}")


class OnePort(Listening):
    """supervisord's Daphne processes on `port` (`pid`: supervisord's); `url` and `ws_url` point at that port."""

    count = 1

    @property
    def daphne_pids(self):
        return daphne_pids(self.pid)

    def serving(self, client_port):
        """The Daphne process holding the connection opened from `client_port` (None if none has it yet)."""
        return accepted_by(self.daphne_pids, self.port, client_port)


class WebProcesses(OnePort, Process):
    """supervisord started here (start_web_processes), and its Daphne processes."""


class RunningWebProcesses(OnePort):
    """A supervisord started by something else (bin/run), and its Daphne processes."""

    def __init__(self, pid, port, count):
        self.pid, self.port, self.count = pid, port, count


def start_web_processes(log_dir, count, env, *, name="web", process_class=WebProcesses):
    """`count` Daphne processes on a free port (found again on a clash), under supervisord, in environment `env`."""

    def start(port):
        environment = supervisord_env(env, port=port, count=count)
        process = process_class(name, supervisord_argv(log_dir, name), environment, log_dir)
        try:
            wait_serving(process.popen, port, count, output=process.output)
        except BaseException:
            process.stop()
            raise
        process.port, process.count = port, count
        return process

    return start_listening(start, port=None)
