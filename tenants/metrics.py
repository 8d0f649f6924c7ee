"""Tenant metrics for Prometheus, read at scrape time from the durable attempts (jobs.metrics says why)."""

from prometheus_client.core import HistogramMetricFamily

from jobs.models import Attempt

from . import tasks
from .models import Tenant
from .services import subject_for

PROVISIONING_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


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


class TenantCollector:
    def collect(self):
        yield provisioning_durations()
