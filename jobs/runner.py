"""The one function RQ runs: load the durable job, run one attempt of it, record what happened."""

import logging
import threading
import traceback as tb

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone
from opentelemetry.trace import SpanKind, StatusCode
from rq import get_current_job

from . import context
from .enqueue import due
from .locks import holding
from .models import Attempt, Job
from .outcomes import FAILED_FOR_GOOD, attempt_failed, attempt_succeeded
from .registry import operation_name, resolve
from .steps import StepRecorder
from .tracing import flush, job_span

logger = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
NOTHING_TO_DO = "nothing to do"
HANDED_BACK = "handed back"


class Heartbeat:
    """Marks the attempt alive every few seconds, so the sweep can tell a dead worker from a slow job."""

    def __init__(self, attempt_id):
        self.attempt_id = attempt_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="diquis-heartbeat", daemon=True)

    def _beat(self):
        while not self.stopped.wait(settings.DIQUIS_HEARTBEAT_INTERVAL):
            try:
                Attempt.objects.filter(pk=self.attempt_id).update(heartbeat_at=timezone.now())
            except Exception as error:
                # Never kill the job it watches, and never stop: one lost connection (a database restart)
                # must not make a live job look abandoned. Reconnect on the next beat.
                logger.warning("heartbeat of attempt %s missed: %s", self.attempt_id, type(error).__name__)
                connections.close_all()
        connections.close_all()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)


@transaction.atomic
def _claim(job_id):
    """Move the job to running and count the attempt; None if another worker has it, it is over, or its
    retry is not due yet. One transaction: a running job always has its running attempt (the sweep
    finds abandoned work through the attempt)."""
    now = timezone.now()
    claimed = Job.objects.filter(due(now), pk=job_id).update(
        status=Job.Status.RUNNING, attempts=F("attempts") + 1, run_after=None
    )
    if not claimed:
        return None, None
    job = Job.objects.get(pk=job_id)
    rq_job = get_current_job()
    attempt = Attempt.objects.create(
        job=job,
        number=job.attempts,
        rq_job_id=rq_job.id if rq_job else "",
        worker=(rq_job.worker_name or "") if rq_job else "",
        started_at=now,
        heartbeat_at=now,
    )
    return job, attempt


def run_job(job_id):
    """Run one attempt of the durable job `job_id` (the one function RQ runs; its argument is a plain id).

    The subject's lock is taken before the job is claimed and held until its outcome is recorded, so no
    two attempts of one subject overlap, even when the sweep has given up on a worker that was only slow.
    A lock that stays busy for DIQUIS_SUBJECT_LOCK_WAIT costs no attempt: nothing is claimed, the job
    stays waiting, and the sweep hands it to a worker again.
    """
    try:
        job = Job.objects.filter(due(timezone.now()), pk=job_id).first()
        if job is None:
            logger.info("job %s is not waiting to run; nothing to do", job_id)
            return NOTHING_TO_DO
        with holding(job.subject, wait=settings.DIQUIS_SUBJECT_LOCK_WAIT) as held:
            if not held:
                logger.warning("job %s handed back: another job holds %s", job_id, job.subject)
                return HANDED_BACK
            job, attempt = _claim(job_id)
            if job is None:
                logger.info("job %s was claimed by another worker; nothing to do", job_id)
                return NOTHING_TO_DO
            return _run_attempt(job, attempt)
    finally:
        connections.close_all()
        flush()


def _attempt_span(job, attempt):
    """The attempt as a span of the trace the job joins (its steps are spans of it: jobs.steps)."""
    return job_span(f"{operation_name(job.task)} attempt", job, attempt, kind=SpanKind.CONSUMER)


def _run_attempt(job, attempt):
    function = resolve(job.task)
    recorder = StepRecorder()
    with (
        _attempt_span(job, attempt) as span,
        context.job_context(job, attempt=attempt.number),
        Heartbeat(attempt.pk),
        recorder.activate(),
    ):
        try:
            function(**job.kwargs)
        except Exception as error:
            logger.warning("attempt %s failed: %s", attempt.number, error)
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, type(error).__name__)
            _close_broken_connections()
            outcome = attempt_failed(
                attempt,
                error=str(error) or type(error).__name__,
                traceback=tb.format_exc(),
                steps=recorder.steps,
            )
            if outcome == FAILED_FOR_GOOD:
                raise
            return outcome
    attempt_succeeded(attempt, recorder.steps)
    return SUCCEEDED


def _close_broken_connections():
    """A connection the server dropped (a restart, pg_terminate_backend) stays broken in Django until it
    is closed: close it, so that recording the outcome reconnects. A healthy one is kept open: it holds
    the subject's lock."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.is_usable():
            connection.close()
