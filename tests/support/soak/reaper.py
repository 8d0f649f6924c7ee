"""Nothing of a soak outlives it, also when it is killed with SIGKILL (no `finally`, no atexit runs then): every
process the soak starts (its Daphnes, workers, redis-server) is written down under var/soak-runs/<pid>/, with its
start time, and a reaper, a process in a session of its own, watches the soak. Once the soak is gone, the reaper
kills what it wrote down (and what those started: a worker's work-horse) and removes the soak's PostgreSQL
clusters (tests/support/postgres_clusters.py: a cluster whose owner is dead is a leftover). A soak that ends as it
should removes its directory itself, and the reaper then leaves. The next soak reaps whatever a run left whose
reaper died too.

`python -m tests.support.soak.reaper <directory>` is the reaper.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.live import ROOT, descendants
from tests.support.postgres_clusters import identity_alive, process_identity, remove_leftover_clusters

RUNS = ROOT / "var" / "soak-runs"
RUNNER = "runner"
POLL_SECONDS = 0.5


class Registry:
    """The directory of this process's run: `add(pid)` writes a process down; `close()` (the run's own clean-up
    is done) removes the directory, and the reaper leaves."""

    def __init__(self, runs=RUNS):
        reap_leftovers(runs)
        self.directory = Path(runs) / str(os.getpid())
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / RUNNER).write_text(process_identity(os.getpid()))
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "tests.support.soak.reaper", str(self.directory)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # out of reach of a signal meant for the run's process group
        )

    def add(self, pid):
        with contextlib.suppress(OSError):  # it has ended already: nothing to reap
            (self.directory / str(pid)).write_text(process_identity(pid))

    def close(self):
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.reaper.wait(timeout=5)


def reap(directory):
    """Kill every process written down in `directory` that still runs (the same process: pid and start time),
    and what it started; remove the clusters of dead owners; then the directory."""
    directory = Path(directory)
    written = [path for path in directory.glob("[0-9]*") if identity_alive(path)]
    pids = [int(path.name) for path in written]
    children = [child for pid in pids for child in descendants(pid)]
    for pid in [*children, *pids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    remove_leftover_clusters()
    shutil.rmtree(directory, ignore_errors=True)


def reap_leftovers(runs=RUNS):
    """Reap the directory of every run that is gone (its reaper, too, was killed before it could)."""
    if Path(runs).is_dir():
        for directory in Path(runs).iterdir():
            if not identity_alive(directory / RUNNER):
                reap(directory)


def watch(directory):
    """The reaper: wait for the run to end; reap what it left, if anything."""
    runner = Path(directory) / RUNNER
    while runner.exists():
        if not identity_alive(runner):
            reap(directory)
            return
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    watch(sys.argv[1])
