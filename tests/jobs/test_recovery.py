"""The recovery rules one by one, in-process, against the real PostgreSQL and Redis: what the sweep pushes
again, what it records as abandoned (and what not), and that every outcome is recorded once."""

import contextlib
import json
import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone
from rq.job import Job as RQJob
from rq.job import JobStatus

from jobs import enqueue as durable
from jobs.locks import holding
from jobs.models import Attempt, Job
from jobs.outcomes import ALREADY_RECORDED, FAILED_FOR_GOOD, RETRY_SCHEDULED, attempt_failed
from jobs.recovery import ABANDONED_ERROR, sweep
from jobs.registry import durable_task
from jobs.runner import HANDED_BACK, SUCCEEDED, run_job
from tests.support.production import manage

pytestmark = pytest.mark.django_db(transaction=True)

RAN = []
FINAL_FAILURES = []


def _remember_final_failure(error, **kwargs):
    FINAL_FAILURES.append((error, kwargs))


def _raise_in_handler(error, **kwargs):
    raise RuntimeError("a bug in the failure handler")


@durable_task(on_final_failure=_remember_final_failure)
def sample_task(*, value):
    RAN.append(value)


@durable_task(on_final_failure=_raise_in_handler)
def task_with_broken_handler(*, value):
    RAN.append(value)


@pytest.fixture(autouse=True)
def _reset():
    RAN.clear()
    FINAL_FAILURES.clear()


def queue():
    return durable.queue()


def carrier_ids():
    return queue().get_job_ids()


def new_job(task=sample_task, *, subject="tenant:sample", **fields):
    job = Job.objects.create(
        task=task.durable_task_name,
        kwargs={"value": "x"},
        subject=subject,
        max_attempts=fields.pop("max_attempts", 3),
        **fields,
    )
    return job


def running_attempt(job, *, silent_for=3600):
    """A running attempt whose heartbeat stopped `silent_for` seconds ago (its worker is gone)."""
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=job.attempts + 1)
    job.refresh_from_db()
    beat = timezone.now() - timedelta(seconds=silent_for)
    return Attempt.objects.create(
        job=job, number=job.attempts, rq_job_id="gone", worker="gone", started_at=beat, heartbeat_at=beat
    )


@contextlib.contextmanager
def lock_held_elsewhere(subject):
    """Another session (as another worker's process would) holds the subject's lock, taken by jobs.locks itself
    in a thread of its own."""
    taken, release = threading.Event(), threading.Event()

    def hold():
        try:
            with holding(subject, wait=30) as held:
                if held:
                    taken.set()
                    release.wait(timeout=300)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold, name="lock-holder", daemon=True)
    holder.start()
    try:
        assert taken.wait(timeout=60), "the other session could not take the lock"
        yield
    finally:
        release.set()
        holder.join(timeout=60)


# --- stranded jobs -------------------------------------------------------------------------------------------


def test_a_job_never_pushed_is_pushed_by_the_sweep():
    job = new_job()  # as if Redis was down at commit: no carrier, pushed_at null
    assert sweep()["pushed"] == 1
    job.refresh_from_db()
    assert job.pushed_at is not None and carrier_ids() == [job.rq_job_id]
    assert sweep()["pushed"] == 0  # its carrier waits in the queue: nothing more


def test_enqueue_names_the_carrier_in_the_transaction_and_pushes_exactly_that_one_after_commit():
    with transaction.atomic():
        job = durable.enqueue(sample_task, subject="tenant:sample", value="x")
        named = Job.objects.get(pk=job.pk).rq_job_id
        assert named and carrier_ids() == []  # nothing reaches Redis before the commit
    job.refresh_from_db()
    assert (job.rq_job_id, carrier_ids()) == (named, [named])
    assert job.pushed_at is not None
    assert sweep()["pushed"] == 0  # the sweep recognises the pre-named carrier as alive


def test_a_rolled_back_enqueue_pushes_nothing():
    with contextlib.suppress(RuntimeError), transaction.atomic():
        durable.enqueue(sample_task, subject="tenant:sample", value="x")
        raise RuntimeError("the caller's transaction fails")
    assert (Job.objects.count(), carrier_ids()) == (0, [])


def test_every_push_of_a_process_shares_one_redis_client():
    """django-rq builds a new client (and pool) per get_queue(): a TCP connection per push without this."""
    assert durable.queue().connection is durable.queue().connection
    first = durable.connection().client_id()
    durable.hand_over(new_job(rq_job_id="diquis-shared-client-probe"))
    assert durable.connection().client_id() == first


def test_a_job_whose_carrier_redis_lost_is_pushed_again_under_a_new_id():
    job = new_job()
    assert durable.push(job.pk)
    job.refresh_from_db()
    lost = job.rq_job_id
    queue().connection.flushdb()  # Redis restarted without persistence
    assert sweep()["pushed"] == 1
    job.refresh_from_db()
    assert job.rq_job_id != lost and carrier_ids() == [job.rq_job_id]


def test_a_carrier_dropped_from_the_queue_list_but_not_its_hash_is_replaced():
    job = new_job()
    durable.push(job.pk)
    job.refresh_from_db()
    queue().connection.lrem(queue().key, 0, job.rq_job_id)  # e.g. taken by a worker that died at once
    assert RQJob.fetch(job.rq_job_id, connection=queue().connection).get_status() == JobStatus.QUEUED
    assert sweep()["pushed"] == 1


@pytest.mark.parametrize(("started_ago", "pushed_again"), [(1, False), (3600, True)])
def test_a_carrier_started_but_never_claimed_is_replaced_only_once_its_worker_must_be_dead(started_ago, pushed_again):
    job = new_job()
    durable.push(job.pk)
    job.refresh_from_db()
    carrier = RQJob.fetch(job.rq_job_id, connection=queue().connection)
    queue().connection.lrem(queue().key, 0, carrier.id)
    carrier.set_status(JobStatus.STARTED)
    carrier.started_at = timezone.now() - timedelta(seconds=started_ago)
    carrier.save()
    assert sweep()["pushed"] == int(pushed_again)


def test_a_retry_that_is_not_due_is_left_waiting():
    job = new_job(status=Job.Status.RETRY_WAIT, attempts=1, run_after=timezone.now() + timedelta(hours=1))
    assert sweep()["pushed"] == 0
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
    assert sweep()["pushed"] == 1


# --- abandoned attempts ----------------------------------------------------------------------------------


def test_an_abandoned_attempt_is_recorded_and_retried():
    job = new_job()
    attempt = running_attempt(job)
    assert sweep() == {"abandoned": 1, "pushed": 0}  # the retry was pushed by the recording itself
    attempt.refresh_from_db()
    job.refresh_from_db()
    assert (attempt.outcome, attempt.error) == (Attempt.Outcome.ABANDONED, ABANDONED_ERROR)
    assert job.status == Job.Status.RETRY_WAIT and carrier_ids() == [job.rq_job_id]
    assert run_job(str(job.pk)) == SUCCEEDED
    job.refresh_from_db()
    assert (job.status, job.attempts, RAN) == (Job.Status.SUCCEEDED, 2, ["x"])


def test_a_silent_attempt_whose_subject_is_still_locked_is_not_abandoned():
    """A process still holds the tenant: it is slow, not dead. Re-running now would run the job twice."""
    job = new_job()
    attempt = running_attempt(job)
    with lock_held_elsewhere(job.subject):
        assert sweep()["abandoned"] == 0
    attempt.refresh_from_db()
    assert attempt.outcome == Attempt.Outcome.RUNNING
    assert sweep()["abandoned"] == 1  # the holder is gone: now it is abandoned


def test_an_attempt_is_recorded_once_whoever_records_it():
    """Two sweeps (or a sweep and a late runner) may find the same attempt: one retry, one notification."""
    job = new_job(max_attempts=1)
    attempt = running_attempt(job)
    assert attempt_failed(attempt, error="first", outcome=Attempt.Outcome.ABANDONED) == FAILED_FOR_GOOD
    assert attempt_failed(attempt, error="second", outcome=Attempt.Outcome.ABANDONED) == ALREADY_RECORDED
    assert FINAL_FAILURES == [("first", {"value": "x"})]
    job.refresh_from_db()
    assert (job.status, job.last_error) == (Job.Status.FAILED, "first")


def test_a_failure_handler_that_raises_does_not_keep_the_job_open():
    job = new_job(task_with_broken_handler, max_attempts=1)
    attempt = running_attempt(job)
    assert attempt_failed(attempt, error="boom") == FAILED_FOR_GOOD
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED


def test_the_default_retry_intervals_are_5_30_120_then_120_again():
    """The default of settings.py, read as a process without DIQUIS_JOB_RETRY_INTERVALS (the suite sets 0)."""
    done = manage("shell", "-c", DEFAULT_INTERVALS, DIQUIS_JOB_RETRY_INTERVALS=None)
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout.strip().splitlines()[-1])
    assert read == {"setting": [5, 30, 120], "waits": [5, 30, 120, 120, 120]}


DEFAULT_INTERVALS = """
import json
from django.conf import settings
from jobs.enqueue import retry_interval
print(json.dumps({"setting": settings.DIQUIS_JOB_RETRY_INTERVALS, "waits": [retry_interval(n) for n in range(1, 6)]}))
"""


def test_each_failed_attempt_waits_its_interval_before_the_retry(settings):
    """With the default list: 5, 30, 120, and the last one again. `run_after` is the moment of the failure
    plus the wait, the moment being somewhere between `before` and `after`."""
    settings.DIQUIS_JOB_RETRY_INTERVALS = [5, 30, 120]
    job = new_job(max_attempts=5)
    for wait in [5, 30, 120, 120]:
        attempt = running_attempt(job)
        before = timezone.now()
        assert attempt_failed(attempt, error="boom") == RETRY_SCHEDULED
        after = timezone.now()
        job.refresh_from_db()
        assert job.status == Job.Status.RETRY_WAIT
        assert before + timedelta(seconds=wait) <= job.run_after <= after + timedelta(seconds=wait), wait
        assert carrier_ids() == []  # pushed by the sweep once due, not by RQ's scheduler
    assert attempt_failed(running_attempt(job), error="boom") == FAILED_FOR_GOOD


# --- the runner --------------------------------------------------------------------------------------------


def test_a_job_whose_subject_is_busy_is_handed_back_without_spending_an_attempt(settings):
    settings.DIQUIS_SUBJECT_LOCK_WAIT = 1
    job = new_job()
    with lock_held_elsewhere(job.subject):
        assert run_job(str(job.pk)) == HANDED_BACK
    job.refresh_from_db()
    assert (job.status, job.attempts, RAN) == (Job.Status.QUEUED, 0, [])
    assert sweep()["pushed"] == 1  # and a worker gets it again
    assert run_job(str(job.pk)) == SUCCEEDED


def test_a_job_runs_at_most_once_whatever_the_number_of_carriers():
    job = new_job()
    assert [run_job(str(job.pk)) for _ in range(3)] == [SUCCEEDED, "nothing to do", "nothing to do"]
    assert RAN == ["x"]
