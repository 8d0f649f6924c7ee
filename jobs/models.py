"""The durable record of every background operation.

RQ keeps its jobs in Redis only: a Redis outage or a worker killed mid-job loses them, and RQ forgets a
job's history once its result expires. The database row below is the source of truth; Redis is only the
transport that wakes a worker. That is why this small layer exists instead of RQ's own Retry alone.
"""

import secrets
import uuid

from django.db import models


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRY_WAIT = "retry_wait", "Waiting to retry"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    OPEN_STATUSES = (Status.QUEUED, Status.RUNNING, Status.RETRY_WAIT)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.CharField(max_length=200, help_text="Dotted path of a @durable_task function.")
    kwargs = models.JSONField(
        default=dict, blank=True, help_text="The task's keyword arguments: plain ids and values; never secrets."
    )
    subject = models.CharField(max_length=200, blank=True, db_index=True, help_text="What the job works on.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField()
    run_after = models.DateTimeField(null=True, blank=True, help_text="When a waiting retry is due.")
    pushed_at = models.DateTimeField(null=True, blank=True, help_text="Last hand-over to Redis.")
    rq_job_id = models.CharField(
        max_length=100, blank=True, help_text="The RQ job last pushed to carry the next attempt (new one per push)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Where the job comes from, for its attempts (re-runs by the sweep included) and the jobs it enqueues in turn.
    request_id = models.CharField(
        max_length=64, blank=True, help_text="X-Request-ID of the request that started the job (its log lines)."
    )
    trace_context = models.JSONField(
        default=dict, blank=True, help_text="W3C trace context (traceparent) of the trace the job joins."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subject", "-created_at"])]

    def __str__(self):
        arguments = ", ".join(f"{name}={value}" for name, value in self.kwargs.items())
        return f"{self.task}({arguments}) [{self.status}]"

    def new_rq_job_id(self):
        """A fresh RQ job id for each push: named after the job and the attempt it carries, and never reused,
        so RQ's leftovers of an earlier carrier (a dead worker's started registry, a failed entry) can never
        be mistaken for, or overwrite, the new one."""
        return f"diquis-{self.id}-{self.attempts + 1}-{secrets.token_hex(4)}"


class Attempt(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned (worker lost)"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_set")
    number = models.PositiveIntegerField()
    rq_job_id = models.CharField(max_length=100)
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    steps = models.JSONField(default=list, blank=True, help_text='[{"name", "seconds"}] in order.')
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["job__created_at", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="one_attempt_per_number")]

    def __str__(self):
        return f"attempt {self.number} of {self.job_id}: {self.outcome}"

    @property
    def duration(self):
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None
