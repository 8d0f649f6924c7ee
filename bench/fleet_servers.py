"""The fleet of the fleet benchmarks: the main server plus two private PostgreSQL clusters, registered as
DatabaseServer rows of the bench's catalog, and everything made on them removed at the end.

The clusters are the suite's own (tests/support/postgres_clusters.py: initdb + pg_ctl on free ports under
var/clusters, durability off, removed when done or when this process exits); one writes logical WAL, the
other does not, so a move from each takes the two copy methods. The rows are written straight into the
catalog, as `migrate` does for DIQUIS_DATABASE_SERVERS: the bench measures placement and failures, not
registration. They connect with the cluster's CREATEDB role and its password, as a production server would;
`as_superuser()` switches them to the clusters' superuser for what PostgreSQL 15 lets only superusers do
(logical replication: a publication of all tables, a subscription).
"""

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.db.models import Q
from psycopg import sql

from tenants.connections import forget_server
from tenants.models import MAIN_SERVER, DatabaseServer, ServerStatus, Tenant
from tenants.provisioning.template import template_prefix
from tenants.vault import encrypt_secret
from tests.support.postgres_clusters import CREATEDB_ROLE, SUPERUSER, PostgresCluster

from . import environment

logger = logging.getLogger("bench")

LOGICAL = "pg-logical"  # wal_level=logical: a move from it can use logical replication
PLAIN = "pg-plain"  # wal_level=replica: a move from it is a dump and a restore
DROPLETS = 4  # databases dropped at once


class Fleet:
    """`with Fleet.start() as fleet:` two clusters running and registered; gone (rows and clusters) on exit."""

    def __init__(self, clusters):
        self.clusters = clusters  # server name -> PostgresCluster

    @classmethod
    def start(cls):
        clusters = {}
        try:
            clusters[LOGICAL] = PostgresCluster.start("fleet-logical", logical=True)
            clusters[PLAIN] = PostgresCluster.start("fleet-plain", logical=False)
        except BaseException:
            for cluster in clusters.values():
                cluster.remove()
            raise
        fleet = cls(clusters)
        for name, cluster in clusters.items():
            DatabaseServer.objects.update_or_create(
                name=name,
                defaults={
                    "host": cluster.host,
                    "port": cluster.port,
                    "user": CREATEDB_ROLE,
                    "encrypted_password": encrypt_secret(cluster.passwords[CREATEDB_ROLE]),
                    "weight": 1,
                    "status": ServerStatus.ACTIVE,
                },
            )
        return fleet

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    @property
    def names(self):
        return [MAIN_SERVER, *self.clusters]

    def use(self, weights):
        """Make exactly the servers of `weights` (name -> weight) Active with those weights; every other extra
        server Disabled (it takes no new tenant)."""
        for name in self.names:
            if name in weights:
                DatabaseServer.objects.filter(pk=name).update(weight=weights[name], status=ServerStatus.ACTIVE)
            else:
                DatabaseServer.objects.filter(pk=name).update(status=ServerStatus.DISABLED)

    def as_superuser(self):
        """Connect to the clusters as their (trusted) superuser from now on, in this process; processes started
        afterwards read the rows afresh."""
        for name in self.clusters:
            DatabaseServer.objects.filter(pk=name).update(user=SUPERUSER, encrypted_password="")
            forget_server(name)

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
        with contextlib.suppress(Exception):
            Tenant.objects.filter(Q(database_server__in=names) | Q(move_target__in=names)).delete()
            DatabaseServer.objects.filter(pk__in=names).delete()
        for name, cluster in self.clusters.items():
            forget_server(name)
            try:
                cluster.remove()
            except Exception:
                logger.exception("could not remove the cluster of %s", name)
