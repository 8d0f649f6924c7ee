"""Job metrics for Prometheus, read at scrape time: attempts from the durable tables, queue depth from Redis.

Why read rather than counted in memory: an RQ worker forks a new work-horse for every job, so an in-memory
counter dies with the horse. The usual fix, prometheus_client's multiprocess mode, writes one file per
process id, that is one file per job here, never compacted, and needs a directory shared by every process
and wiped on each deploy. The durable Job/Attempt rows, on the other hand, are written by every attempt
whatever process runs it, they survive restarts, and they are what the admin's attempt history shows:
counters derived from them stay right with any number of workers (and never go down, since attempts are
never deleted). Queue depth is the queue's length in Redis at that moment (django-rq's RQCollector).
"""

from django.db.models import Count
from django_rq.contrib.prometheus import RQCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .models import Attempt, Job
from .registry import operation_name


def job_counters():
    """Attempts started, succeeded and failed (a worker lost mid-job counts as failed, outcome=abandoned)."""
    started = CounterMetricFamily("diquis_jobs_started", "Job attempts started.", labels=["task"])
    succeeded = CounterMetricFamily("diquis_jobs_succeeded", "Job attempts that succeeded.", labels=["task"])
    failed = CounterMetricFamily("diquis_jobs_failed", "Job attempts that failed.", labels=["task", "outcome"])
    totals = {}
    rows = Attempt.objects.values_list("job__task", "outcome").annotate(n=Count("id")).order_by()
    for task, outcome, n in rows:
        task = operation_name(task)
        totals[task] = totals.get(task, 0) + n
        if outcome == Attempt.Outcome.SUCCEEDED:
            succeeded.add_metric([task], n)
        elif outcome in (Attempt.Outcome.FAILED, Attempt.Outcome.ABANDONED):
            failed.add_metric([task, outcome], n)
    for task, n in totals.items():
        started.add_metric([task], n)
    return [started, succeeded, failed]


def open_jobs():
    """Accepted operations not finished yet, by state: the durable side of the queue's depth."""
    gauge = GaugeMetricFamily("diquis_jobs_open", "Durable jobs not finished yet.", labels=["status"])
    counts = dict(Job.objects.filter(status__in=Job.OPEN_STATUSES).values_list("status").annotate(n=Count("id")))
    for status in Job.OPEN_STATUSES:
        gauge.add_metric([status], counts.get(status, 0))
    return gauge


class JobCollector:
    """The durable side of the jobs, from the database."""

    def collect(self):
        yield from job_counters()
        yield open_jobs()


class QueueCollector(RQCollector):
    """django-rq's collector (jobs per queue and registry, workers), read from Redis at scrape time.
    A Redis outage must not break the scrape of everything else."""

    def collect(self):
        up = GaugeMetricFamily("diquis_redis_up", "Whether Redis answered this scrape.")
        try:
            families = list(super().collect())
        except Exception:
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families
