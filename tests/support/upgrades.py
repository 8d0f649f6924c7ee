"""Upgrades as rows, for the pages and metrics that only read them: no job runs and no tenant database is opened
(tests/tenants/provisioning/test_rollout.py runs real ones)."""

import datetime

from django.utils import timezone

from tenants import selectors
from tenants.models import UPGRADE_OPEN, Upgrade, UpgradeStatus, UpgradeTenant
from tenants.provisioning.template import migration_fingerprint
from tests.support.factories import TenantFactory


def make_upgrade(
    children=(),
    *,
    status=UpgradeStatus.RUNNING,
    skipped=0,
    initiated_by=None,
    started_ago=datetime.timedelta(minutes=10),
    canary=0,
    parallel=4,
    max_failures=0,
    error="",
):
    """An upgrade with one child per (tenant id, server, status[, error]) of `children`, plus `skipped` tenants
    already at the head when it started; finished (now) unless open. Returned as selectors.get_upgrade has it."""
    now = timezone.now()
    upgrade = Upgrade.objects.create(
        status=status,
        target=migration_fingerprint(),
        total=len(children) + skipped,
        skipped=skipped,
        canary=canary,
        parallel=parallel,
        max_failures=max_failures,
        initiated_by=initiated_by,
        finished_on=None if status in UPGRADE_OPEN else now,
        error=error,
    )
    UpgradeTenant.objects.bulk_create(
        UpgradeTenant(
            upgrade=upgrade,
            tenant_id=tenant_id,
            database_server=server,
            status=child_status,
            error=rest[0] if rest else "",
        )
        for tenant_id, server, child_status, *rest in children
    )
    Upgrade.objects.filter(pk=upgrade.pk).update(started_on=now - started_ago)  # auto_now_add: set after
    return selectors.get_upgrade(upgrade.pk)


def isolated_tenant(tenant_id, *, fingerprint=None, **fields):
    """An isolated tenant in the catalog only (no database is made), whose database the catalog believes is at
    `fingerprint` (None: not known, so behind)."""
    return TenantFactory(
        id=tenant_id,
        has_isolated_database=True,
        database_name=f"db_{tenant_id}",
        database_server_id="main",
        schema_fingerprint=fingerprint,
        **fields,
    )
