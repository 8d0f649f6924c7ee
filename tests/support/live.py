"""The real stack for end-to-end tests: Daphne and RQ worker processes on the test database and Redis."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.db import connection

from tests.support.ports import start_listening, wait_listening

ROOT = Path(__file__).resolve().parents[2]


def stack_env(**overrides):
    """The environment of a child process: the suite's, pointed at the test database pytest-django made."""
    env = dict(os.environ)
    settings = connection.settings_dict
    env["DATABASE_URL"] = (
        f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
        f"/{settings['NAME']}"
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Process:
    port = None  # the port it listens on, for a server

    def __init__(self, name, argv, env, log_dir, cwd=ROOT, *, own_session=False):
        """`own_session`: in a session (so a process group) of its own, which `killpg(pid)` ends as a whole,
        processes that outlived their parent included."""
        self.name = name
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=own_session
        )

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()

    def output(self):
        return self.log_path.read_text(errors="replace")

    def children(self):
        """The live processes this one started (an RQ worker's work-horse and scheduler), from /proc."""
        return descendants(self.pid)

    def started(self, word):
        """The pid of a live process this one started itself (a child, not a grandchild: an RQ worker's work-horse
        has its worker's command line) whose command line holds `word` (bytes), or None (not yet)."""
        for child in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                if word in Path(f"/proc/{child}/cmdline").read_bytes():
                    return int(child)
        return None

    def kill_tree(self):
        """SIGKILL this process and everything it started (RQ puts its work-horse in a process group of
        its own, so killing the worker's group alone would leave the horse running)."""
        for pid in [self.pid, *self.children()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=15)
        self.log.close()


def descendants(pid):
    """Pids of every live process below `pid`."""
    parents = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(entry.name)
        if fields is not None and fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (the state first, then the parent's pid), or None if
    the process is gone. The name is cut at its last ")": it may hold spaces and parentheses of its own."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return None


def gone(pid):
    """The process has ended (or is a zombie waiting to be reaped)."""
    fields = stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def start_worker(log_dir, name="worker", **env):
    return Process(
        name,
        [sys.executable, "manage.py", "rqworker", "--with-scheduler", "--worker-ttl", "30"],
        stack_env(**env),
        log_dir,
    )


class Listening:
    """The addresses of a Daphne listening on 127.0.0.1:`self.port`."""

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/hubs/notifications"


class Web(Listening, Process):
    """A Daphne process; `url` and `ws_url` point at it."""


def start_server(process, port):
    """`process` (just started), once it listens on `port` (`process.port`); stopped if it never does."""
    try:
        wait_listening(process.popen, port, output=process.output, timeout=60)
    except BaseException:
        process.stop()
        raise
    process.port = port
    return process


def start_web(log_dir, port=None, name="web", **env):
    """Daphne, listening on `port` (`process.port`): a free port when None, found again on a clash; a given
    one (a restart where the clients expect it) is waited for while somebody else holds it."""
    environment = stack_env(**{"DIQUIS_WEB_DATABASE_POOL": "true", **env})  # as in production (pytest.ini: off)

    def start(chosen):
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(chosen), "diquis.asgi:application"]
        return start_server(Web(name, argv, environment, log_dir), chosen)

    process = start_listening(start, port=port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"daphne exited:\n{process.output()}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{process.url}/health", timeout=5)  # database down: 503 after the pool's wait
            return process
        time.sleep(0.2)
    process.stop()
    raise RuntimeError("daphne did not start in 30 s")


class LiveStack(Listening):
    """One Daphne and one worker; `url` and `ws_url` point at them."""

    def __init__(self, log_dir, **env):
        self.log_dir = log_dir
        self.env = env
        self.web = start_web(log_dir, **env)
        self.port = self.web.port
        self.workers = [start_worker(log_dir, **env)]

    def add_worker(self, name=None, **env):
        worker = start_worker(self.log_dir, name=name or f"worker{len(self.workers)}", **{**self.env, **env})
        self.workers.append(worker)
        return worker

    def stop(self):
        for process in [*self.workers, self.web]:
            process.stop()


def recv_json(ws, timeout):
    return json.loads(ws.recv(timeout=timeout))


def wait_for_event(ws, event, timeout=20):
    """Frames until one of `event` arrives; returns it and the frames seen before it."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {event} within {timeout}s; saw {[f['event'] for f in seen]}")
        try:
            frame = recv_json(ws, left)
        except TimeoutError:
            continue
        if frame["event"] == event:
            return frame, seen
        seen.append(frame)


def drain(ws, seconds):
    """Every frame that arrives within `seconds`."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(recv_json(ws, left))
        except TimeoutError:
            break
    return frames
