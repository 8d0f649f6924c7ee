"""The extra PostgreSQL servers of the suite (tests/support/postgres_clusters.py) as database servers of the
catalog, and the clean-up of what tests leave on them."""

import psycopg
from psycopg import sql

from tenants.connections import SERVER_ALIAS_PREFIX, forget_database, forget_server
from tenants.models import DatabaseServer
from tenants.vault import encrypt_secret

from .postgres_clusters import CREATEDB_ROLE, SUPERUSER
from .tenant_databases import TEST_DB_PREFIX, drop_test_roles


def register_cluster(cluster, name, *, weight=1, role=CREATEDB_ROLE, **fields):
    """A DatabaseServer row for `cluster`, straight in the catalog (no check: tests of registration use the API),
    connecting as `role`: by default the cluster's CREATEDB role with its password, as a production server would;
    SUPERUSER (trusted, no password) for what only a superuser may do."""
    password = "" if role == SUPERUSER else cluster.passwords[role]
    # A server of this name registered before, with another role: neither its cached settings nor this thread's
    # open connection to its maintenance database may outlive it.
    forget_server(name)
    forget_database(f"{SERVER_ALIAS_PREFIX}{name}")
    return DatabaseServer.objects.create(
        name=name,
        host=cluster.host,
        port=cluster.port,
        user=role,
        encrypted_password=encrypt_secret(password) if password else "",
        weight=weight,
        **fields,
    )


def databases_on(cluster, prefix=TEST_DB_PREFIX):
    with psycopg.connect(cluster.url, autocommit=True) as connection:
        rows = connection.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])
        return sorted(row[0] for row in rows)


def drop_test_databases_on(cluster):
    """Every database (and template) the tests made on `cluster`, and the tenant roles, by the run's test prefix."""
    if not cluster.running():
        return
    with psycopg.connect(cluster.url, autocommit=True) as connection:
        for name in databases_on(cluster):
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        with connection.cursor() as cursor:
            drop_test_roles(cursor)


def roles_on(cluster, prefix=TEST_DB_PREFIX):
    with psycopg.connect(cluster.url, autocommit=True) as connection:
        rows = connection.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [prefix])
        return sorted(row[0] for row in rows)
