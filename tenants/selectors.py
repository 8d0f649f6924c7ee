"""Read-side queries of the tenants domain."""

from django.db.models import Count, Q

from jobs.models import Job

from .models import MAIN_SERVER, ROOT_TENANT_ID, DatabaseServer, ProvisioningStatus, Tenant, User


def get_tenant(tenant_id):
    if not tenant_id:
        return None
    return Tenant.objects.filter(pk=tenant_id).first()


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
    """Tenants with a database of their own (not those being deleted: their database is going away)."""
    return (
        Tenant.objects.filter(has_isolated_database=True, database_name__isnull=False)
        .exclude(status=ProvisioningStatus.DELETING)
        .order_by("id")
    )


def users_of(tenant_id):
    return User.objects.filter(tenant_id=tenant_id).order_by("email")


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
