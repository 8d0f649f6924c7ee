"""Read-side queries of the tenants domain."""

import uuid

from django.db.models import Count, Q

from jobs.models import Job

from .models import (
    MAIN_SERVER,
    ROOT_TENANT_ID,
    UPGRADE_OPEN,
    DatabaseServer,
    ProvisioningStatus,
    Tenant,
    Upgrade,
    UpgradeTenantStatus,
    User,
)


def get_tenant(tenant_id):
    """The tenant with this id, or None. Runs on every API call (TenantMiddleware): `get()` rather than
    `first()`, which would order one row by the model's ordering and compile that ORDER BY each time."""
    if not tenant_id:
        return None
    try:
        return Tenant.objects.get(pk=tenant_id)
    except Tenant.DoesNotExist:
        return None


def tenants_by_id(tenant_ids):
    """{id: tenant} of those of the ids that exist, in one query."""
    return Tenant.objects.in_bulk([tenant_id for tenant_id in tenant_ids if tenant_id])


def tenant_list(*, status=None):
    queryset = Tenant.objects.order_by("-created_on", "id")
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def tenant_options():
    """Active tenants users can sign in to: root first, then by name."""
    usable = [
        t
        for t in Tenant.objects.filter(is_active=True, is_provisioned=True)
        .exclude(status=ProvisioningStatus.DELETING)
        .only("id", "name", "status", "is_active", "is_provisioned")
    ]
    return sorted(usable, key=lambda t: (t.id != ROOT_TENANT_ID, t.name.lower(), t.id))


def isolated_tenants():
    """Tenants with a database of their own whose creation succeeded (not those being deleted: their database is
    going away). One not provisioned yet has its database named, maybe not made: its creation's retry makes it,
    migrates it and sets its role. The databases an upgrade covers (one being created is cloned from the template
    of the head, or migrated to it, by its own job)."""
    return (
        Tenant.objects.filter(has_isolated_database=True, database_name__isnull=False, is_provisioned=True)
        .exclude(status=ProvisioningStatus.DELETING)
        .order_by("id")
    )


def users_of(tenant_id):
    return User.objects.filter(tenant_id=tenant_id).order_by("email")


def user_of(tenant_id, user_id):
    """The tenant's user with this id; None for an id that is no user's of this tenant (another tenant's
    included: its admins see theirs only), or no UUID at all."""
    try:
        user_id = uuid.UUID(str(user_id))
    except ValueError:
        return None
    return users_of(tenant_id).filter(pk=user_id).first()


def users_newest_first(tenant_id):
    """The original web client's user list: the newest first, as the original service answered it."""
    return users_of(tenant_id).order_by("-created_on", "email")


def find_user(tenant_id, email):
    return User.objects.filter(tenant_id=tenant_id, email=email.strip().lower()).first()


def _servers_with_counts():
    return DatabaseServer.objects.annotate(tenant_count=Count("tenants"))


def database_servers():
    """Every database server, `main` first, then in the order they were registered, with `tenant_count`."""
    return sorted(
        _servers_with_counts(), key=lambda server: (server.name != MAIN_SERVER, server.created_on, server.name)
    )


def get_database_server(name):
    """The server named so, with `tenant_count`; None when there is none."""
    if not name:
        return None
    return _servers_with_counts().filter(pk=name).first()


def tenants_on_server(name):
    """The tenants whose database is on the server, or being moved to it: while there is one, it stays."""
    return Tenant.objects.filter(Q(database_server_id=name) | Q(move_target_id=name))


def move_cleanups_on_server(name):
    """Open jobs that still have to clear what a failed move left on the server (tenants.tasks.clean_up_after_move):
    the server must stay known to them until they are done."""
    return Job.objects.filter(task__endswith=".clean_up_after_move", status__in=Job.OPEN_STATUSES).filter(
        Q(kwargs__source=name) | Q(kwargs__target=name)
    )


def tenants_behind(head):
    """Isolated tenants whose database was not left at `head` (or at a fingerprint not known): from the catalog."""
    return isolated_tenants().exclude(schema_fingerprint=head)


def _child_count(status):
    return Count("children", filter=Q(children__status=status))


def upgrade_list():
    """Upgrades, the last first, with the counts of their children: `done`, `failed`, `children_skipped`."""
    return Upgrade.objects.annotate(
        done=_child_count(UpgradeTenantStatus.DONE),
        failed=_child_count(UpgradeTenantStatus.FAILED),
        children_skipped=_child_count(UpgradeTenantStatus.SKIPPED),
    ).order_by("-started_on", "-id")


def get_upgrade(upgrade_id):
    return upgrade_list().filter(pk=upgrade_id).first()


def open_or_last_upgrade():
    """The upgrade that is open (there is at most one), else the last one; None before the first."""
    return upgrade_list().filter(status__in=UPGRADE_OPEN).first() or upgrade_list().first()


def upgrade_child_counts(upgrade):
    """{status: n} of the upgrade's children, every status present (0 when none)."""
    found = dict(upgrade.children.values_list("status").annotate(n=Count("id")).order_by())
    return {status: found.get(status, 0) for status in UpgradeTenantStatus.values}


def upgrade_failures(upgrade):
    return upgrade.children.filter(status=UpgradeTenantStatus.FAILED).order_by("tenant_id")


def upgrade_progress_by_server(upgrade):
    """{server: {"done", "failed", "pending"}} of the upgrade's children (running ones count as pending)."""
    progress = {}
    rows = upgrade.children.values_list("database_server", "status").annotate(n=Count("id")).order_by()
    for server, status, n in rows:
        counts = progress.setdefault(server, {"done": 0, "failed": 0, "pending": 0, "skipped": 0})
        key = status if status in counts else "pending"
        counts[key] += n
    return dict(sorted(progress.items()))
