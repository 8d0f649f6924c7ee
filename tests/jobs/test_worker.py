"""The worker class: what it loads before it forks its first work-horse, and the one function of RQ's it
copies (RQ gives no way to extend it) with the two private attributes it touches, pinned so that an RQ upgrade
that changes them fails here instead of drifting silently."""

import hashlib
import inspect
import subprocess
import sys

import django_rq
import rq
from rq.scheduler import RQScheduler
from rq.worker import BaseWorker

from jobs import worker

PROBE = """
import sys
import django
django.setup()
from jobs.worker import preload
probes = ("jobs.runner", "channels_redis.core", "tenants.migrations.0001_initial")
before = [name for name in probes if name in sys.modules]
preload()
print(before, [name for name in probes if name in sys.modules], "tenants.tasks" in sys.modules)
"""


def test_preload_imports_the_runner_the_tasks_the_layer_and_the_migration_graph():
    output = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    loaded = "['jobs.runner', 'channels_redis.core', 'tenants.migrations.0001_initial']"
    assert output.splitlines()[-1] == f"[] {loaded} True"


def test_rq_start_scheduler_is_still_the_one_jobs_worker_copied():
    source = inspect.getsource(BaseWorker._start_scheduler)
    assert hashlib.sha256(source.encode()).hexdigest() == worker.COPIED_START_SCHEDULER_SHA256, (
        f"RQ's Worker._start_scheduler has changed (rq {rq.__version__}). Re-read it, and check whether RQ now "
        "lets a worker choose its scheduler class: if so, use that and drop the copy. If not, bring "
        "jobs.worker.Worker._start_scheduler up to date (it is RQ's own with jobs.worker.Scheduler in place of "
        "RQScheduler) and set COPIED_START_SCHEDULER_SHA256 to the hash of the new source."
    )


def test_the_private_attributes_jobs_worker_touches_are_still_rqs():
    connection = django_rq.get_connection("default")  # its own client: RQ's worker changes its socket timeout
    rq_worker = rq.Worker(["default"], connection=connection)
    scheduler = RQScheduler(rq_worker.queues, connection=connection)
    message = "jobs.worker resets Worker._horse_pid and reads RQScheduler._process: see where RQ keeps them now"
    assert rq_worker._horse_pid == rq_worker.horse_pid == 0, message
    assert scheduler._process is None, message
