"""`make run` (bin/run) stops in bounded time: SIGTERM to every process it started, RUN_STOP_GRACE_SECONDS for them
to end, then SIGKILL for what is left. A one-process Daphne given SIGTERM waits for its running requests without a
limit; one stopped with SIGSTOP cannot even handle SIGTERM, the plainest real stand-in for one stuck in a request."""

import contextlib
import http.client
import os
import re
import signal
import sys
import time
from pathlib import Path

from tests.support import live
from tests.support.ports import free_port

GRACE = 5  # past what an idle RQ worker needs to stop (its scheduler, its pubsub thread): only Daphne is killed
SLACK = 5  # seconds past the grace for bin/run's polling, the SIGKILL and the reaping
PROMPT = 10  # seconds a normal stop may take
KILLED = re.compile(r"^bin/run: (\S+) \(pid (\d+)\) still running \d+ s after SIGTERM: killed \(SIGKILL\)", re.M)


def answers(port):
    with contextlib.suppress(OSError, http.client.HTTPException):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/health")  # 200, or 503 while the worker registers: either is an answer
        connection.getresponse().read()
        connection.close()
        return True
    return False


def wait_until_up(run, port, timeout=120):
    """(Daphne's pid, the RQ worker's pid) once both are running and Daphne answers on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.alive(), run.output()[-3000:]
        daphne, worker = run.started(b"daphne"), run.started(b"rqworker")
        if daphne and worker and answers(port):
            return daphne, worker
        time.sleep(0.5)
    raise AssertionError(f"bin/run was not up in {timeout} s:\n{run.output()[-3000:]}")


@contextlib.contextmanager
def running(tmp_path, grace):
    """bin/run on a free port with RUN_STOP_GRACE_SECONDS=`grace`, in a process group of its own; yields it and
    (Daphne's pid, the worker's pid). Afterwards that whole group is SIGKILLed, whatever the test left running
    (bin/run's processes stay in its group, even those that outlive it)."""
    port = free_port()
    env = live.stack_env(PORT=port, RUN_STOP_GRACE_SECONDS=grace, VENV=Path(sys.executable).parent.parent)
    run = live.Process("run", ["bin/run"], env, tmp_path, own_session=True)
    try:
        yield run, wait_until_up(run, port)
    finally:
        with contextlib.suppress(ProcessLookupError):  # no job runs, so no RQ work-horse in a group of its own
            os.killpg(run.pid, signal.SIGKILL)
        run.popen.wait(timeout=15)
        run.log.close()


def stopped_by_sigterm(run, timeout):
    """SIGTERM to bin/run: its exit status, and the seconds it took to exit."""
    sent = time.monotonic()
    run.popen.send_signal(signal.SIGTERM)
    status = run.popen.wait(timeout=timeout)
    return status, time.monotonic() - sent


def test_a_web_process_that_cannot_stop_is_killed_once_the_grace_is_over(transactional_db, tmp_path):
    with running(tmp_path, GRACE) as (run, (daphne, worker)):
        started = run.children()
        os.kill(daphne, signal.SIGSTOP)  # SIGTERM stays pending: only SIGKILL ends it
        status, took = stopped_by_sigterm(run, GRACE + SLACK)
        output = run.output()
        assert status == 143, output[-3000:]
        assert GRACE - 0.5 <= took < GRACE + SLACK, (took, output[-3000:])
        assert [pid for pid in started if not live.gone(pid)] == [], output[-3000:]
        assert KILLED.findall(output) == [("daphne", str(daphne))], output[-3000:]  # the worker ended on SIGTERM


def test_a_normal_stop_ends_promptly_and_kills_nothing(transactional_db, tmp_path):
    with running(tmp_path, 30) as (run, _):
        started = run.children()
        status, took = stopped_by_sigterm(run, PROMPT)
        output = run.output()
        assert status == 143, output[-3000:]
        assert took < PROMPT, (took, output[-3000:])
        assert [pid for pid in started if not live.gone(pid)] == [], output[-3000:]
        assert KILLED.findall(output) == [], output[-3000:]


def test_a_process_that_ends_on_its_own_ends_the_run_with_its_status(transactional_db, tmp_path):
    with running(tmp_path, GRACE) as (run, (daphne, worker)):
        started = run.children()
        os.kill(daphne, signal.SIGKILL)
        status = run.popen.wait(timeout=PROMPT)
        output = run.output()
        assert status == 128 + signal.SIGKILL, output[-3000:]  # Daphne's, as `wait -n` gave it
        assert f"bin/run: daphne (pid {daphne}) ended on its own with status 137: stopping the rest" in output
        assert [pid for pid in started if not live.gone(pid)] == [], output[-3000:]  # the worker stopped on SIGTERM
        assert KILLED.findall(output) == [], output[-3000:]
