"""Who holds sessions on each database server: what `manage.py tenant_connections` prints and /metrics exports.

Every process names its sessions (tenants.pools.session_name: `diquis-web-<pid>`, `diquis-worker-<pid>`, or
PGAPPNAME), so a server's pg_stat_activity tells each process's sessions on tenant databases apart from the rest.
What the bound of the pools means for a server: each process keeps at most DIQUIS_TENANT_POOL_PER_SERVER idle
tenant sessions on it, plus one per request or job in flight; the sum over processes must stay under the server's
max_connections with room for migrations and moves.
"""

from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.conf import settings

from .models import MAIN_SERVER, DatabaseServer
from .servers import connection_parameters

SESSIONS_BY_PROCESS = """
SELECT coalesce(nullif(application_name, ''), '(unnamed)'),
       count(*) FILTER (WHERE starts_with(datname, %(prefix)s)),
       count(*)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1 ORDER BY 1
"""


def server_sessions(server_name):
    """{"maxConnections": n, "free": n, "sessions": n, "tenantSessions": n, "byProcess": {name: {"tenant": n,
    "all": n}}} of the server now (`free`: what roles other than superusers may still open); None if it does not
    answer."""
    try:
        with psycopg.connect(**connection_parameters(server_name), autocommit=True) as connection:
            maximum = int(connection.execute("SHOW max_connections").fetchone()[0])
            reserved = int(connection.execute("SHOW superuser_reserved_connections").fetchone()[0])
            rows = connection.execute(
                SESSIONS_BY_PROCESS, {"prefix": settings.DIQUIS_TENANT_DATABASE_PREFIX}
            ).fetchall()
    except psycopg.Error:
        return None
    return {
        "maxConnections": maximum,
        "free": max(maximum - reserved - sum(total for _, _, total in rows) - 1, 0),  # - 1: this check's own
        "sessions": sum(total for _, _, total in rows),
        "tenantSessions": sum(tenant for _, tenant, _ in rows),
        "byProcess": {name: {"tenant": tenant, "all": total} for name, tenant, total in rows},
    }


def fleet_sessions():
    """server_sessions of every server of the catalog (PostgreSQL only), asked at once."""
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return {}
    names = [
        MAIN_SERVER,
        *DatabaseServer.objects.exclude(pk=MAIN_SERVER).order_by("name").values_list("name", flat=True),
    ]
    with ThreadPoolExecutor(max_workers=min(len(names), 8)) as executor:
        return dict(zip(names, executor.map(server_sessions, names), strict=True))
