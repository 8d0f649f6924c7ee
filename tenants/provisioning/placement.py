"""Which server a new isolated tenant's database goes to (API.md, "Database servers"): the one rule.

The `Active` servers that answer, the one with the fewest tenants per unit of `weight` first (ties: `main`, then
by name). A root admin may have named one at creation (services.create_tenant checks it), and then it is that
one. The choice is made by the creation job, under a lock, so a burst of creations spreads as the weights say,
and it is kept: a retry of the creation reuses it.
"""

from django.db import transaction
from django.db.models import Count, Q

from jobs.locks import subject_lock

from ..exceptions import NoServerAvailable
from ..models import MAIN_SERVER, DatabaseServer, ServerStatus, Tenant
from ..servers import check_reachable

PLACEMENT_LOCK_KEY = "tenant-database-placement"


def by_load(servers):
    """Servers in placement order: tenants per unit of weight, then `main`, then by name."""
    return sorted(servers, key=lambda s: (s.tenant_count / max(s.weight, 1), s.name != MAIN_SERVER, s.name))


def candidates():
    """The Active servers with a weight, annotated with how many tenants they hold (or are receiving)."""
    return DatabaseServer.objects.filter(status=ServerStatus.ACTIVE, weight__gt=0).annotate(
        tenant_count=Count("tenants", distinct=True)
        + Count("incoming_tenants", filter=Q(incoming_tenants__isnull=False), distinct=True)
    )


def choose_server(*, excluding=()):
    """The server the next isolated tenant's database goes to. NoServerAvailable when none answers."""
    for server in by_load(candidates().exclude(name__in=excluding)):
        if check_reachable(server.name):
            return server
    raise NoServerAvailable()


def place(tenant):
    """Pick the tenant's server and record it on the tenant."""
    with subject_lock(PLACEMENT_LOCK_KEY), transaction.atomic():
        server = choose_server()
        Tenant.objects.filter(pk=tenant.pk).update(database_server=server)
    tenant.database_server = server
    return server
