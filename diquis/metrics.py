"""Prometheus metrics at /metrics, for a root session or the METRICS_TOKEN bearer token.

Why most values are read at scrape time from PostgreSQL and Redis instead of counted in memory:
an RQ worker forks a new work-horse for every job, so an in-memory counter dies with the horse. The
usual fix, prometheus_client's multiprocess mode, writes one file per process id, that is one file per
job here, never compacted, and needs a directory shared by every process and wiped on each deploy. The
durable Job/Attempt rows, on the other hand, are written by every attempt whatever process runs it, they
survive restarts, and they are what the admin's attempt history shows: counters derived from them stay
right with any number of workers (and never go down, since attempts are never deleted). Queue depth is
the queue's length in Redis at that moment (django-rq's RQCollector). Only the count of open websockets
lives in memory: it belongs to the web process that holds the sockets and serves this page (with several
web processes, scrape each one as its own target and sum).
"""

import hmac

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from django_rq.contrib.prometheus import RQCollector
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from jobs.access import ROOT_ONLY, is_root
from jobs.models import Attempt, Job
from notifications.models import Notification
from tenants import tasks
from tenants.models import Tenant
from tenants.services import subject_for


PROVISIONING_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

registry = CollectorRegistry()  # not auto-described: collecting reads the database, never at import
ProcessCollector(registry=registry)
websocket_connections = Gauge(
    "diquis_websocket_connections_open", "Websockets open on this web process.", registry=registry
)


def _short(task):
    return task.rsplit(".", 1)[-1]


def job_counters():
    """Attempts started, succeeded and failed (a worker lost mid-job counts as failed, outcome=abandoned)."""
    started = CounterMetricFamily("diquis_jobs_started", "Job attempts started.", labels=["task"])
    succeeded = CounterMetricFamily("diquis_jobs_succeeded", "Job attempts that succeeded.", labels=["task"])
    failed = CounterMetricFamily("diquis_jobs_failed", "Job attempts that failed.", labels=["task", "outcome"])
    totals = {}
    rows = Attempt.objects.values_list("job__task", "outcome").annotate(n=Count("id")).order_by()
    for task, outcome, n in rows:
        task = _short(task)
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


def provisioning_durations():
    """How long the successful attempt of each tenant creation took, by kind of tenant (shared/isolated).

    The kind is read from the tenant: a tenant deleted since leaves the histogram."""
    isolated = {
        subject_for(tenant_id)
        for tenant_id in Tenant.objects.filter(has_isolated_database=True).values_list("id", flat=True)
    }
    existing = {subject_for(tenant_id) for tenant_id in Tenant.objects.values_list("id", flat=True)}
    observed = {"shared": [], "isolated": []}
    attempts = Attempt.objects.filter(
        job__task=tasks.provision_tenant.durable_task_name,
        outcome=Attempt.Outcome.SUCCEEDED,
        ended_at__isnull=False,
    ).values_list("job__subject", "started_at", "ended_at")
    for subject, started_at, ended_at in attempts:
        if subject in existing:
            kind = "isolated" if subject in isolated else "shared"
            observed[kind].append((ended_at - started_at).total_seconds())
    histogram = HistogramMetricFamily(
        "diquis_provisioning_duration_seconds", "Duration of successful tenant creations.", labels=["kind"]
    )
    for kind, seconds in observed.items():
        buckets = [(str(bound), sum(1 for s in seconds if s <= bound)) for bound in PROVISIONING_BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        histogram.add_metric([kind], buckets, sum_value=sum(seconds))
    return histogram


def notifications_sent():
    """Persisted notifications (every one is pushed after commit); progress frames are not persisted."""
    counter = CounterMetricFamily("diquis_notifications_sent", "Notifications sent, by event.", labels=["event"])
    for event, n in Notification.objects.values_list("event").annotate(n=Count("id")).order_by():
        counter.add_metric([event], n)
    return counter


class DatabaseCollector:
    def collect(self):
        yield from job_counters()
        yield open_jobs()
        yield provisioning_durations()
        yield notifications_sent()


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


registry.register(DatabaseCollector())
registry.register(QueueCollector())


def _bearer_token_ok(request):
    expected = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), expected.encode())


def metrics_view(request):
    if not (_bearer_token_ok(request) or is_root(request.user)):
        if request.user.is_authenticated:
            return HttpResponse(ROOT_ONLY, status=403, content_type="text/plain")
        response = HttpResponse("Sign in as root or send the metrics bearer token.", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class CountWebsockets:
    """ASGI middleware: keeps `websocket_connections` equal to the sockets this process has accepted and
    not yet closed (wrapping the hub from outside, so the consumer stays unaware of metrics)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        accepted = False

        async def counting_send(message):
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                websocket_connections.inc()
            await send(message)

        try:
            return await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                websocket_connections.dec()
