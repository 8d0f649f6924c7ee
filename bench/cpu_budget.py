"""Where the CPU of a measurement goes: seconds of CPU (user + system) spent by each part of the stack.

A throughput that stops growing with more web processes may be the machine's ceiling rather than the
server's: the clients, PostgreSQL and Redis run on the same cores. `CpuBudget` reads, before and after a
measurement, the CPU each part has used so far, and keeps the differences.

A meter is a function returning {key: CPU seconds used so far} (None when the part cannot be seen from here,
e.g. a server in another container); the difference is taken key by key, so a process that appears during the
measurement counts from zero. A process that both starts and ends inside it is missed unless it is the child
of a metered tree (its parent then holds its time as reaped children's time).
"""

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.support.live import descendants, stat_fields

from . import environment, sandbox

TICKS = os.sysconf("SC_CLK_TCK")


def process_seconds(pid, *, reaped_children=False):
    """CPU seconds of one process (all its threads); with `reaped_children`, plus those of the children it has
    waited for. None if it is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    # After the state: utime and stime are fields 12 and 13, cutime and cstime 14 and 15 (proc(5), from 1).
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def tree_seconds(pid):
    """CPU seconds of a process and everything it started, alive or ended and reaped."""
    found = [process_seconds(p, reaped_children=True) for p in [pid, *descendants(pid)]]
    return sum(seconds for seconds in found if seconds is not None)


def process_tree_meter(pid):
    """A meter of `pid` and all its descendants (supervisord and its Daphne processes)."""
    return lambda: {pid: tree_seconds(pid)}


def own_process_meter():
    """The bench process itself, every thread: the clients."""

    def meter():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"self": usage.ru_utime + usage.ru_stime}

    return meter


# The server's own processes (checkpointer, WAL writer, ...) and the backends connected to the bench's databases;
# the backends of other databases (other runs on the machine) are left out.
BENCH_BACKENDS = """
    SELECT pid, backend_type FROM pg_stat_activity
    WHERE backend_type <> 'client backend' OR datname = %s OR starts_with(datname, %s)
"""


def parent_pid(pid):
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def _is_postgres(pid):
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
    return False


def postgresql_meter():
    """The PostgreSQL processes serving the bench: the postmaster, the server's own processes and the bench's
    backends, each by pid. None when the server's processes are not visible in this machine's /proc."""

    def meter():
        rows = sandbox.server_execute(BENCH_BACKENDS, [environment.main_database_name(), environment.tenant_prefix()])
        # Every process of the server is a child of the postmaster; the checkpointer always runs.
        postmaster = next((parent_pid(pid) for pid, kind in rows if kind == "checkpointer"), None)
        if postmaster is None or not _is_postgres(postmaster):
            return None
        found = {pid: process_seconds(pid) for pid in {postmaster, *(pid for pid, _ in rows)}}
        return {pid: seconds for pid, seconds in found.items() if seconds is not None}

    return meter


def redis_meter():
    """The Redis server, from its own INFO (so it is seen wherever it runs), with its forks (a background save)."""

    def meter():
        cpu = sandbox.redis_client().info("cpu")
        keys = ("used_cpu_user", "used_cpu_sys", "used_cpu_user_children", "used_cpu_sys_children")
        return {"redis": sum(float(cpu.get(key, 0)) for key in keys)}

    return meter


def machine_meter():
    """Every core's busy time (all but idle and I/O wait), from /proc/stat: what the whole machine spent."""

    def meter():
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
        return {"machine": (user + nice + system + irq + softirq + steal) / TICKS}

    return meter


STACK = ("web", "postgresql", "redis", "clients")


def stack_meters(web_pid):
    """The meters of the accept path (STACK: the web processes under `web_pid`, PostgreSQL, Redis, the clients),
    and "machine", every process of the machine, to compare their sum with."""
    return {
        "web": process_tree_meter(web_pid),
        "postgresql": postgresql_meter(),
        "redis": redis_meter(),
        "clients": own_process_meter(),
        "machine": machine_meter(),
    }


def spent(before, after):
    """CPU seconds between two readings of one meter, key by key (None if either reading is None)."""
    if before is None or after is None:
        return None
    return sum(max(0.0, seconds - before.get(key, 0.0)) for key, seconds in after.items())


class CpuBudget:
    """`with CpuBudget({"web": meter, ...}) as budget:` ... then `budget.seconds`: {"web": CPU seconds, ...}."""

    def __init__(self, meters):
        self.meters = dict(meters)
        self.seconds = {}

    def _read(self):
        return {name: meter() for name, meter in self.meters.items()}

    def __enter__(self):
        self._before = self._read()
        return self

    def __exit__(self, *exc):
        after = self._read()
        self.seconds = {name: spent(self._before[name], after[name]) for name in self.meters}
        return False


# A fixed amount of pure-Python work (no I/O, no shared state): what one core does with it is the yardstick.
SPIN = "n = int(__import__('sys').argv[1])\nwhile n:\n    n -= 1"


def _spin_seconds(processes, loops):
    """Wall seconds for `processes` Python processes started at once, each counting `loops` down to 0."""
    started = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", SPIN, str(loops)]) for _ in range(processes)]
    for process in children:
        process.wait()
    return time.perf_counter() - started


def parallel_speedup(processes, *, loops=15_000_000, rounds=3):
    """What the machine itself gives `processes` CPU-bound processes at once against one, by the same work:
    processes × (one's time) / (their time), the median of `rounds` pairs (one then many, alternating in order).
    2 on two real cores; less where the cores are hyperthreads of one, or the hypervisor takes them (steal).
    The ceiling of any speedup that more web processes can bring here."""
    speedups = []
    for index in range(rounds):
        order = (1, processes) if index % 2 == 0 else (processes, 1)
        seconds = {count: _spin_seconds(count, loops) for count in order}
        speedups.append(processes * seconds[1] / seconds[processes])
    return statistics.median(speedups)
