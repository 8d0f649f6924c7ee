"""Tenants of the fleet benchmarks: created through the API and waited for, their admins' tokens, and all of
them gone again (rows, jobs, and their databases on every server) between measurements."""

import asyncio
import time

from jobs.models import Job
from notifications.models import Notification
from tenants.connections import use_tenant
from tenants.models import ROOT_TENANT_ID, ProvisioningStatus, Tenant, User
from tenants.tokens import issue_tokens

from . import fixtures
from .clients import closed_loop

SUBMITTERS = 32  # clients POSTing creations at once


def wait_until_settled(ids, timeout):
    """Until every tenant of `ids` is Active or Failed and no job is open (the spares' refills included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        settled = Tenant.objects.filter(
            id__in=ids, status__in=[ProvisioningStatus.ACTIVE, ProvisioningStatus.FAILED]
        ).count()
        if settled >= len(ids) and not Job.objects.filter(status__in=Job.OPEN_STATUSES).exists():
            return True
        time.sleep(0.3)
    return False


def clear_tenants(fleet):
    """Every tenant but root, with its database on whichever server, and the jobs and notifications (the
    templates and their spares stay: the next burst starts where a deployed server would)."""
    Tenant.objects.exclude(pk=ROOT_TENANT_ID).delete()
    Job.objects.all().delete()
    Notification.objects.all().delete()
    fleet.drop_tenant_databases()


def create_tenants(web, bodies, *, timeout=None):
    """POST every body (SUBMITTERS clients), then wait until all are settled. Returns the POST result."""
    submitted = asyncio.run(
        closed_loop(
            web.url, "/api/tenants", bodies, concurrency=SUBMITTERS, headers=fixtures.root_headers(), expect=202
        )
    )
    wait_until_settled([b["id"] for b in bodies], timeout or 60 + len(bodies) * 4)
    return submitted


def tenant_tokens(tenants):
    """An access token of each tenant's admin (read from the tenant's own database)."""
    tokens = []
    for tenant in tenants:
        with use_tenant(tenant):
            admin = User.objects.get(tenant_id=tenant.id, email=tenant.admin_email)
        tokens.append(issue_tokens(admin, tenant=tenant)["token"])
    return tokens
