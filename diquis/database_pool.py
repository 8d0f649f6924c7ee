"""The web process's main-database connections come from a pool (Django 5.1+'s psycopg pool).

Django's advice under ASGI: each request's sync code may run on a thread of its own, so persistent
connections would leak one per thread, and without them every request and every websocket handshake
opened a PostgreSQL session of its own, a large part of a 202's time. Only the web process pools (diquis.asgi
calls this): a worker forks a work-horse per job, and a pool's connections must not cross a fork.
Tenant databases' sessions have a pool of their own, in every process (tenants.pools: one per tenant database and
role would be a psycopg pool, and its threads, per tenant).
"""

from django.conf import settings

POOL_WAIT = 3


def pool_main_database():
    """Turn the pool on for the main database, before the process's first query. PostgreSQL only.

    One connection kept at rest, more while requests overlap, never more than the process may keep
    (DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS); one idle for a minute is closed. A request waits at most
    POOL_WAIT seconds for a session: with the database down, it answers 503 after that. Persistent
    connections asked for in DATABASE_URL (`?conn_max_age=`) are kept as asked: Django pools only without them.
    """
    database = settings.DATABASES["default"]
    wanted = settings.DIQUIS_WEB_DATABASE_POOL and not database.get("CONN_MAX_AGE")
    if wanted and database["ENGINE"] == "django.db.backends.postgresql":
        size = max(settings.DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS, 1)
        pool = {"min_size": 1, "max_size": size, "max_idle": 60, "timeout": POOL_WAIT}
        database.setdefault("OPTIONS", {})["pool"] = pool
