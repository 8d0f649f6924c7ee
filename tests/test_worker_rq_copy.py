"""jobs.worker copies one function of RQ's, which RQ gives no way to extend, and touches two of RQ's private
attributes: pinned here, so that an RQ upgrade that changes them fails this test instead of drifting silently."""

import hashlib
import inspect

import django_rq
import rq
from rq.scheduler import RQScheduler
from rq.worker import BaseWorker

from jobs import worker


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
