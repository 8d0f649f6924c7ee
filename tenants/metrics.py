"""Tenant metrics for Prometheus, read at scrape time from the durable attempts (jobs.metrics says why)."""

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from jobs.models import Attempt

from . import selectors, tasks
from .models import UPGRADE_OPEN, Tenant, UpgradeTenantStatus
from .pools import pool
from .provisioning.template import migration_fingerprint
from .services import subject_for
from .sessions import fleet_sessions

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


def server_sessions():
    """Sessions on each database server (all, and on tenant databases) against its max_connections."""
    sessions = GaugeMetricFamily(
        "diquis_database_server_sessions", "Client sessions on a database server.", labels=["server", "databases"]
    )
    maximum = GaugeMetricFamily(
        "diquis_database_server_max_connections", "max_connections of a server.", labels=["server"]
    )
    for server, seen in fleet_sessions().items():
        if seen is not None:
            sessions.add_metric([server, "all"], seen["sessions"])
            sessions.add_metric([server, "tenant"], seen["tenantSessions"])
            maximum.add_metric([server], seen["maxConnections"])
    return [sessions, maximum]


def pooled_sessions():
    """The tenant sessions this process (the one scraped) holds, by server: idle in its pool, or in use."""
    gauge = GaugeMetricFamily(
        "diquis_tenant_pool_sessions", "Tenant database sessions of this process.", labels=["server", "state"]
    )
    for server, counts in pool.stats().items():
        gauge.add_metric([server, "idle"], counts["idle"])
        gauge.add_metric([server, "in_use"], counts["inUse"])
    return gauge


def upgrades():
    """Tenant database upgrades, from the catalog (no tenant database is opened): how many databases are behind this
    release's head, the open upgrade (or else the last one) by the status of its tenant databases (plus its total and
    skipped as the API counts them), and whether one is open, by status."""
    behind = GaugeMetricFamily(
        "diquis_tenants_behind_head", "Isolated tenant databases not at this release's migration head."
    )
    behind.add_metric([], selectors.tenants_behind(migration_fingerprint()).count())
    tenants = GaugeMetricFamily(
        "diquis_upgrade_tenants",
        "Tenant databases of the open (or last) upgrade by status; total, and skipped as the API counts them.",
        labels=["status"],
    )
    running = GaugeMetricFamily(
        "diquis_upgrade_running", "1 while an upgrade is open, by its status.", labels=["status"]
    )
    upgrade = selectors.open_or_last_upgrade()
    children = selectors.upgrade_child_counts(upgrade) if upgrade else dict.fromkeys(UpgradeTenantStatus.values, 0)
    if upgrade is not None:
        children[UpgradeTenantStatus.SKIPPED] += upgrade.skipped
    for status, n in children.items():
        tenants.add_metric([status], n)
    tenants.add_metric(["total"], upgrade.total if upgrade else 0)
    for status in sorted(UPGRADE_OPEN):
        running.add_metric([status], int(upgrade is not None and upgrade.status == status))
    return [behind, tenants, running]


class TenantCollector:
    def collect(self):
        yield provisioning_durations()
        yield from server_sessions()
        yield pooled_sessions()
        yield from upgrades()
