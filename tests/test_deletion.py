"""Deleting a tenant (the job's steps, real PostgreSQL): an isolated one leaves no database, a shared one no
rows; sessions on the database are terminated; every step can run again after a crash."""

import json

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from notifications.models import Notification
from tenants import faults, provisioning
from tenants.models import ProvisioningStatus, Tenant, User
from tenants.provisioners import drop_tenant_data
from tests.support.tenant_databases import (
    main_database,
    new_tenant,
    prefixed_databases,
    query,
    raw_cursor,
    sessions_on,
    templates,
)

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

S = ProvisioningStatus


@pytest.fixture
def created(root_user, tenant_databases):
    def create(tenant_id, isolated):
        new_tenant(tenant_id, isolated=isolated)
        provisioning.provision_tenant(tenant_id, str(root_user.pk))
        if not isolated:
            User.objects.create_user(f"member@{tenant_id}.test", "Member-Pass-77!", tenant_id=tenant_id)
        return Tenant.objects.get(pk=tenant_id)

    return create


def start_deletion(tenant_id):
    """What DELETE /api/tenants/{id} leaves for the job (services.delete_tenant)."""
    Tenant.objects.filter(pk=tenant_id).update(status=S.DELETING, operation="delete")


def main_rows(tenant_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_user WHERE tenant_id = %s", [tenant_id])
        return cursor.fetchone()[0]


def test_deleting_an_isolated_tenant_drops_its_database_and_ends_sessions_on_it(created, root_user):
    tenant = created("alpha", isolated=True)
    assert f"{PREFIX}alpha" in prefixed_databases()
    with raw_cursor(f"{PREFIX}alpha") as someone:  # a session left open on the tenant's database
        someone.execute("SELECT 1")
        assert sessions_on(f"{PREFIX}alpha") >= 1
        start_deletion(tenant.id)
        provisioning.deprovision_tenant(tenant.id, str(root_user.pk))
        with pytest.raises(psycopg.OperationalError):
            someone.execute("SELECT 1")
    assert prefixed_databases() - templates() == set()
    assert query(main_database(), f"SELECT count(*) FROM pg_database WHERE datname = '{PREFIX}alpha'") == [(0,)]
    assert not Tenant.objects.filter(pk="alpha").exists()
    deleted = Notification.objects.get(user_id=root_user.pk, event="TenantDeleted")
    assert deleted.data["tenantId"] == "alpha"


def test_deleting_a_shared_tenant_removes_its_rows_and_nothing_else(created, root_user):
    created("gamma", isolated=False)
    created("delta", isolated=False)
    assert main_rows("gamma") == 2
    start_deletion("gamma")
    provisioning.deprovision_tenant("gamma", str(root_user.pk))
    assert main_rows("gamma") == 0
    assert not Tenant.objects.filter(pk="gamma").exists()
    assert main_rows("delta") == 2 and Tenant.objects.filter(pk="delta").exists()
    assert User.objects.filter(pk=root_user.pk).exists()


def test_dropping_twice_is_harmless(created):
    tenant = created("alpha", isolated=True)
    drop_tenant_data(tenant)
    drop_tenant_data(tenant)
    assert f"{PREFIX}alpha" not in prefixed_databases()


@pytest.mark.parametrize("crash", ["before-drop", "after-drop"])
def test_a_deletion_that_crashed_finishes_on_retry(created, root_user, tmp_path, settings, crash):
    tenant = created("alpha", isolated=True)
    start_deletion(tenant.id)
    if crash == "before-drop":
        settings.DIQUIS_FAULTS_FILE = str(tmp_path / "fault.json")
        (tmp_path / "fault.json").write_text(json.dumps({"step": "drop_tenant_data", "tenant": "alpha"}))
        with pytest.raises(faults.InjectedFault):
            provisioning.deprovision_tenant(tenant.id, str(root_user.pk))
        (tmp_path / "fault.json").unlink()
        assert f"{PREFIX}alpha" in prefixed_databases()
    else:
        drop_tenant_data(tenant)  # the database went, the catalog row stayed
    assert Tenant.objects.get(pk="alpha").status == S.DELETING
    provisioning.deprovision_tenant(tenant.id, str(root_user.pk))
    assert not Tenant.objects.filter(pk="alpha").exists()
    assert f"{PREFIX}alpha" not in prefixed_databases()


def test_a_deletion_job_for_a_tenant_already_gone_does_nothing(root_user, db):
    provisioning.deprovision_tenant("never-was", str(root_user.pk))
    assert not Notification.objects.filter(event="TenantDeleted").exists()
