"""What the benchmarks need in the database: the root's token, tenant bodies, users in bulk, a reset."""

import functools
import itertools

from django.conf import settings
from django.contrib.auth.hashers import make_password

from jobs.enqueue import queue
from jobs.models import Job
from notifications.models import Notification
from tenants.connections import database_name_for
from tenants.models import MAIN_SERVER, ROOT_TENANT_ID, ProvisioningStatus, Tenant, Upgrade, User
from tenants.provisioning.template import migration_fingerprint
from tenants.tokens import issue_tokens

from . import environment, sandbox

ADMIN_PASSWORD = "Bench-Admin-Pass-9!"
_serial = itertools.count(1)


def root_user():
    return User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())


def root_headers():
    return {"Authorization": f"Bearer {issue_tokens(root_user())['token']}"}


def tenant_body(kind, *, isolated):
    """A valid creation body with a tenant id never used before in this run."""
    tenant_id = f"{kind}-{next(_serial):06d}"
    return {
        "id": tenant_id,
        "name": f"Bench {tenant_id}",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": ADMIN_PASSWORD,
        "hasIsolatedDatabase": isolated,
    }


def bulk_users(count, *, tenant_id=ROOT_TENANT_ID, label="fan", roles=()):
    """`count` users of one tenant, inserted at once (they share one precomputed hash: never used)."""
    password = make_password(ADMIN_PASSWORD)
    users = [
        User(email=f"{label}{i:05d}@bench.test", tenant_id=tenant_id, roles=list(roles), password=password)
        for i in range(count)
    ]
    return User.objects.using("default").bulk_create(users, batch_size=1000)


def tokens_for(users):
    return [issue_tokens(user)["token"] for user in users]


def reset():
    """Between sections, with no process of the stack running: only the root tenant and its user stay,
    and no tenant database but the template."""
    root_email = settings.DIQUIS_ROOT_EMAIL.lower()
    Tenant.objects.exclude(pk=ROOT_TENANT_ID).delete()
    Job.objects.all().delete()
    Upgrade.objects.all().delete()
    Notification.objects.all().delete()
    User.objects.using("default").exclude(tenant_id=ROOT_TENANT_ID, email=root_email).delete()
    drop_tenant_databases()
    sandbox.delete_redis_keys()
    queue().empty()


def drop_tenant_databases():
    """Every tenant database of the run but the template (the next section clones from it)."""
    template_prefix = f"{environment.tenant_prefix()}template_"
    for name in sandbox.database_names(environment.tenant_prefix()):
        if not name.startswith(template_prefix):
            sandbox.drop_database(name)


# This process's migration head (its settings never change): computed once, not for each of a thousand rows.
head_fingerprint = functools.cache(migration_fingerprint)


def active_tenant(label, tenant_id, *, isolated):
    """An unsaved Active tenant row as provisioning leaves it (for bulk inserts): named `<label> <id>`, its
    database (if isolated) on the main server, at this release's head, as cloned from the template."""
    return Tenant(
        id=tenant_id,
        name=f"{label} {tenant_id}",
        admin_email=f"admin@{tenant_id}.test",
        status=ProvisioningStatus.ACTIVE,
        is_provisioned=True,
        has_isolated_database=isolated,
        database_name=database_name_for(tenant_id) if isolated else None,
        database_server_id=MAIN_SERVER if isolated else None,
        schema_fingerprint=head_fingerprint() if isolated else None,
    )
