"""The CPU accounting of the bench (bench.cpu_budget) on real processes: a child that burns about 0.3 s of CPU
is charged about that, one that waits is charged nearly nothing, and a grandchild that ends inside the
measurement still counts."""

import subprocess
import sys
import textwrap
import time

import pytest

from bench.cpu_budget import CpuBudget, parallel_speedup, postgresql_meter, process_tree_meter, redis_meter

# On "go" (a line on stdin), burn `seconds` of CPU, then say "done".
BURNER = textwrap.dedent(
    """
    import sys, time
    seconds = float(sys.argv[1])
    for _ in sys.stdin:
        until = time.process_time() + seconds
        while time.process_time() < until:
            pass
        print("done", flush=True)
    """
)
# On "go", run a burner of its own to its end (so it is reaped inside the measurement), then say "done".
PARENT = textwrap.dedent(
    f"""
    import subprocess, sys
    for _ in sys.stdin:
        subprocess.run([sys.executable, "-c", {BURNER!r}, sys.argv[1]], input="go\\n", text=True, capture_output=True)
        print("done", flush=True)
    """
)


@pytest.fixture
def child():
    started = []

    def start(program, seconds):
        process = subprocess.Popen(
            [sys.executable, "-c", program, str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        time.sleep(0.5)  # the interpreter's own start-up, outside the measurement
        return process

    yield start
    for process in started:
        process.stdin.close()
        process.wait(timeout=10)


def measure(process, *, go):
    with CpuBudget({"child": process_tree_meter(process.pid)}) as budget:
        if go:
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "done"
        else:
            time.sleep(0.3)
    return budget.seconds["child"]


def test_a_child_burning_cpu_is_charged_about_what_it_burned(child):
    assert 0.1 <= measure(child(BURNER, 0.3), go=True) <= 2


def test_a_waiting_child_is_charged_nearly_nothing(child):
    assert measure(child(BURNER, 0.3), go=False) <= 0.03


def test_a_grandchild_that_ended_inside_the_measurement_counts(child):
    assert 0.1 <= measure(child(PARENT, 0.3), go=True) <= 2


def test_the_servers_meters_see_postgresql_and_redis():
    with CpuBudget({"postgresql": postgresql_meter(), "redis": redis_meter()}) as budget:
        pass
    assert budget.seconds["postgresql"] is not None and budget.seconds["postgresql"] >= 0
    assert budget.seconds["redis"] >= 0


def test_the_machines_parallel_speedup_is_between_none_and_the_processes():
    """Two CPU-bound processes at once against one: about 1 with no parallelism at all, 2 on two free cores; outside
    that (less the noise of timing on a shared machine) the measurement is wrong."""
    speedup = parallel_speedup(2, loops=2_000_000, rounds=1)
    assert 0.8 < speedup < 2.4
