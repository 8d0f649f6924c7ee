"""The runner's per-subject lock, with two real attempts of one subject at once (two threads, two database
sessions, jobs.runner.run_job each), against the real PostgreSQL: the second waits until the first has
recorded its outcome, and the two never overlap. What each session does is read from pg_stat_activity, so
nothing here waits a fixed time."""

import threading

import pytest
from django.db import connection, connections

from jobs.models import Attempt, Job
from jobs.registry import durable_task
from jobs.runner import SUCCEEDED, run_job
from tests.support.fault_injection import wait_until
from tests.support.tenant_databases import main_database, raw_cursor

pytestmark = pytest.mark.django_db(transaction=True)

SUBJECT = "tenant:contended"
INSIDE, OVERLAPS = set(), []
FIRST_ENTERED, FIRST_MAY_END = threading.Event(), threading.Event()
TRY_LOCK = "pg_try_advisory_lock"


@durable_task()
def contended(*, name):
    if INSIDE:
        OVERLAPS.append((name, set(INSIDE)))
    INSIDE.add(name)
    try:
        if name == "first":
            FIRST_ENTERED.set()
            assert FIRST_MAY_END.wait(timeout=120)
    finally:
        INSIDE.discard(name)


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.DIQUIS_SUBJECT_LOCK_WAIT = 120  # the second attempt waits for as long as the test needs
    INSIDE.clear()
    OVERLAPS.clear()
    FIRST_ENTERED.clear()
    FIRST_MAY_END.clear()
    yield
    FIRST_MAY_END.set()


class Attempting(threading.Thread):
    """run_job(job) in a thread of its own (and so in a database session of its own, whose pid it tells)."""

    def __init__(self, job):
        super().__init__(name=f"attempt-{job.kwargs['name']}", daemon=True)
        self.job, self.result, self.session = job, None, threading.Event()

    def run(self):
        connection.ensure_connection()
        self.pid = connection.connection.info.backend_pid
        self.session.set()
        try:
            self.result = run_job(str(self.job.pk))
        finally:
            connections.close_all()

    def begin(self):
        self.start()
        assert self.session.wait(timeout=60)
        return self


def activity(pid):
    """(last query, when it started, wait event type) of one session."""
    with raw_cursor(main_database()) as cursor:
        cursor.execute("SELECT query, query_start, wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()


def polls_the_lock(pid, since=None):
    """The session's last statement is a try for the subject's lock (begun after `since`)."""
    query, started, _ = activity(pid)
    return TRY_LOCK in query and (since is None or started > since)


def new_job(name):
    return Job.objects.create(task=contended.durable_task_name, kwargs={"name": name}, subject=SUBJECT, max_attempts=1)


def test_two_attempts_of_one_subject_never_overlap_and_the_lock_outlives_the_recorded_outcome():
    first_job, second_job = new_job("first"), new_job("second")
    first = Attempting(first_job).begin()
    assert FIRST_ENTERED.wait(timeout=60)

    second = Attempting(second_job).begin()
    wait_until(lambda: polls_the_lock(second.pid), timeout=60, what="the second attempt trying the lock")
    second_job.refresh_from_db()
    assert (second_job.status, second_job.attempts) == (Job.Status.QUEUED, 0)  # not even claimed

    # The first attempt's outcome cannot be written while this session holds its attempt's row: the first
    # attempt is stuck recording it. The lock must still be its own meanwhile.
    with raw_cursor(main_database()) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM jobs_attempt WHERE job_id = %s FOR UPDATE", [first_job.pk])
        FIRST_MAY_END.set()
        wait_until(lambda: activity(first.pid)[2] == "Lock", timeout=60, what="the first attempt recording")
        recording_since = activity(first.pid)[1]
        wait_until(
            lambda: polls_the_lock(second.pid, since=recording_since),
            timeout=60,
            what="the second attempt trying the lock while the first records its outcome",
        )
        second_job.refresh_from_db()
        assert second_job.attempts == 0
        holder.execute("ROLLBACK")

    first.join(timeout=60)
    second.join(timeout=60)
    assert (first.result, second.result) == (SUCCEEDED, SUCCEEDED)
    assert OVERLAPS == []
    first_attempt, second_attempt = (Attempt.objects.get(job=job) for job in (first_job, second_job))
    assert first_attempt.ended_at <= second_attempt.started_at
