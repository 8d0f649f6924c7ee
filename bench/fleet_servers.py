"""The fleet of the fleet benchmarks: the main server plus two private PostgreSQL clusters, registered as
DatabaseServer rows of the bench's catalog, and everything made on them removed at the end.

The clusters are the suite's own (tests/support/postgres_clusters.py: initdb + pg_ctl on free ports under
var/clusters, durability off, removed when done or when this process exits); one writes logical WAL, the
other does not, so a move from each takes the two copy methods. They are registered, weighted and
disabled through the servers API (API.md, "Database servers"), as a root admin would. They connect with the
cluster's CREATEDB role and its password, as a production server would; `as_superuser()` registers them again
with the clusters' superuser for what PostgreSQL 15 lets only superusers do (logical replication: a
publication of all tables, a subscription).
"""

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
from django.db.models import Q
from psycopg import sql

from tenants.connections import forget_server
from tenants.models import MAIN_SERVER, DatabaseServer, Tenant
from tenants.provisioning.template import template_prefix
from tests.support.postgres_clusters import CREATEDB_ROLE, SUPERUSER, PostgresCluster

from . import environment, fixtures

logger = logging.getLogger("bench")

LOGICAL = "pg-logical"  # wal_level=logical: a move from it can use logical replication
PLAIN = "pg-plain"  # wal_level=replica: a move from it is a dump and a restore
DROPLETS = 4  # databases dropped at once


class Fleet:
    """`with Fleet.start() as fleet:` two clusters running (`register` makes them servers of the catalog); gone,
    rows and clusters, on exit."""

    def __init__(self, clusters):
        self.clusters = clusters  # server name -> PostgresCluster

    @classmethod
    def start(cls):
        """The two clusters, running (not registered yet: `register` does it through the API)."""
        clusters = {}
        try:
            clusters[LOGICAL] = PostgresCluster.start("fleet-logical", logical=True)
            clusters[PLAIN] = PostgresCluster.start("fleet-plain", logical=False)
        except BaseException:
            for cluster in clusters.values():
                cluster.remove()
            raise
        return cls(clusters)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    @property
    def names(self):
        return [MAIN_SERVER, *self.clusters]

    def register(self, web, *, role=CREATEDB_ROLE):
        """`POST /api/database-servers` for each cluster, connecting as `role` (the CREATEDB role with its
        password, as a production server would; SUPERUSER, trusted, for what only a superuser may do)."""
        for name, cluster in self.clusters.items():
            url = cluster.url_as(SUPERUSER) if role == SUPERUSER else cluster.url_as(role, cluster.passwords[role])
            _call(web, "POST", "/api/database-servers", {"name": name, "url": url, "weight": 1}, expect=201)

    def unregister(self, web):
        for name in self.clusters:
            _call(web, "DELETE", f"/api/database-servers/{name}", expect=204)

    def use(self, web, weights):
        """Make exactly the servers of `weights` (name -> weight) Active with those weights; every other extra
        server Disabled (it takes no new tenant). Through `PATCH /api/database-servers/{name}`."""
        for name in self.names:
            body = {"weight": weights[name], "status": "Active"} if name in weights else {"status": "Disabled"}
            _call(web, "PATCH", f"/api/database-servers/{name}", body, expect=200)

    def as_superuser(self, web):
        """Register the clusters again with their superuser (no tenant may be on them)."""
        self.unregister(web)
        self.register(web, role=SUPERUSER)

    def superuser_connection(self, server, database="postgres"):
        """A psycopg connection (autocommit) as a superuser to `database` on `server` (main included)."""
        if server == MAIN_SERVER:
            return psycopg.connect(environment.server_dsn(database), autocommit=True)
        return self.clusters[server].connect(self.clusters[server].url_as(SUPERUSER, database=database))

    def tenant_databases(self, server):
        """The bench's tenant databases on a server (not the templates, nor their spares)."""
        with self.superuser_connection(server) as connection:
            rows = connection.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND NOT starts_with(datname, %s)",
                [environment.tenant_prefix(), template_prefix()],
            )
            return sorted(row[0] for row in rows)

    def drop_tenant_databases(self):
        """Every tenant database the bench made, on every server that runs (not the templates and spares),
        a few at a time: a drop waits for every session of its server to let go of the files, and the main
        server is shared with other runs. Returns how many."""
        doomed = [
            (name, database)
            for name in self.names
            if name == MAIN_SERVER or self.clusters[name].running()
            for database in self.tenant_databases(name)
        ]
        with ThreadPoolExecutor(DROPLETS) as pool:
            list(pool.map(lambda pair: self._drop(*pair), doomed))
        return len(doomed)

    def _drop(self, server, database):
        with self.superuser_connection(server) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

    def remove(self):
        """The rows (and any tenant still on them) and the clusters, whatever fails on the way."""
        names = list(self.clusters)
        with contextlib.suppress(Exception):  # the rows straight away: the API may be gone with its process
            Tenant.objects.filter(Q(database_server__in=names) | Q(move_target__in=names)).delete()
            DatabaseServer.objects.filter(pk__in=names).delete()
        for name, cluster in self.clusters.items():
            forget_server(name)
            try:
                cluster.remove()
            except Exception:
                logger.exception("could not remove the cluster of %s", name)


def _call(web, method, path, body=None, *, expect):
    """One call of the servers API as root; a RuntimeError with the envelope's messages if it is refused (they
    never contain the URL or its password: API.md)."""
    response = httpx.request(method, f"{web.url}{path}", json=body, headers=fixtures.root_headers(), timeout=60)
    if response.status_code != expect:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    return response
