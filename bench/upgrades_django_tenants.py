"""Section 8's django-tenants side: N tenant schemas with bench.tenant_product, upgraded by django-tenants'
`migrate_schemas --executor multiprocessing`, with nothing to apply and with the next release's migration.

`measure(n)` is what bench.upgrades calls; `python -m bench.upgrades_django_tenants --tenants N` prints the same
figures as JSON. It runs in the main venv, and so imports only the standard library and psycopg: django-tenants runs
in its own venv (bench.django_tenants_env), as the project bench.django_tenants_project, in subprocesses started from
the repo's root. Its database (bench.django_tenants_project.settings, bench_dt_tenants by default) is made afresh
and dropped at the end, whatever happens.

1. The schemas: bench.django_tenants_schemas (the shared schema migrated, a reference tenant made the normal way,
   the others copies of it). Timed, as create_seconds, but not part of the comparison.
2. `migrate_schemas --executor multiprocessing --noinput`, the whole command's wall time (the public schema and
   every tenant's), with nothing to apply; then again under settings_release, which adds one migration.
3. Every tenant schema checked for the release's column and index in PostgreSQL's catalogs (not django_migrations).
"""

import argparse
import json
import logging
import os
import time

import psycopg
from psycopg import sql

from . import django_tenants_env
from .commands import timed_run
from .django_tenants_project import settings as project_settings
from .environment import ROOT
from .tenant_product import NEW_COLUMN, NEW_INDEX, ORDER_TABLE

logger = logging.getLogger("bench")

SETTINGS = "bench.django_tenants_project.settings"
RELEASE_SETTINGS = "bench.django_tenants_project.settings_release"
PUBLIC = "public"


def _dsn(dbname):
    database = project_settings.DATABASES["default"]
    return f"host={database['HOST']} port={database['PORT']} user={database['USER']} dbname={dbname}"


def _server(statement):
    with psycopg.connect(_dsn("postgres"), autocommit=True) as connection:
        connection.execute(statement)


def drop_database():
    """Its sessions ended first (FORCE): a killed migrate_schemas' pool may still hold some."""
    name = sql.Identifier(project_settings.DATABASE_NAME)
    _server(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def create_database():
    drop_database()
    _server(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(project_settings.DATABASE_NAME)))


def timed(python, *args, settings=SETTINGS):
    """Wall time of `python args...` in the django-tenants venv; raises with the tail of its output if it fails."""
    return timed_run([python, *args], env=dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE=settings))


def migrate_schemas(python, executor, settings=SETTINGS):
    return timed(python, "-m", "django", "migrate_schemas", "--executor", executor, "--noinput", settings=settings)


def tenant_schemas(connection):
    rows = connection.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname <> %s AND nspname NOT LIKE 'pg\\_%%' "
        "AND nspname <> 'information_schema'",
        [PUBLIC],
    )
    return [name for (name,) in rows]


def schemas_with_release():
    """(tenant schemas, of them those with the new column, those with the new index), from the catalogs."""
    with psycopg.connect(_dsn(project_settings.DATABASE_NAME)) as connection:
        schemas = tenant_schemas(connection)
        column = connection.execute(
            "SELECT count(DISTINCT table_schema) FROM information_schema.columns "
            "WHERE table_schema = ANY(%s) AND table_name = %s AND column_name = %s",
            [schemas, ORDER_TABLE, NEW_COLUMN],
        ).fetchone()[0]
        index = connection.execute(
            "SELECT count(DISTINCT schemaname) FROM pg_indexes "
            "WHERE schemaname = ANY(%s) AND tablename = %s AND indexname = %s",
            [schemas, ORDER_TABLE, NEW_INDEX],
        ).fetchone()[0]
    return len(schemas), column, index


def applied_since(began):
    """Seconds from `began` (time.time()) to the moment each tenant schema recorded a migration applied after it
    (django_migrations.applied, its own record of the release's migration), in order: the run's progress."""
    offsets = []
    with psycopg.connect(_dsn(project_settings.DATABASE_NAME)) as connection:
        for schema in tenant_schemas(connection):
            query = sql.SQL("SELECT extract(epoch FROM max(applied)) FROM {}.django_migrations").format(
                sql.Identifier(schema)
            )
            applied = connection.execute(query).fetchone()[0]
            if applied is not None and float(applied) >= began:
                offsets.append(float(applied) - began)
    return sorted(offsets)


def measure(n_tenants, *, executor="multiprocessing"):
    """The django-tenants figures of section 8 for `n_tenants` schemas (see the module's docstring)."""
    python = django_tenants_env.ensure()
    create_database()
    try:
        logger.info("django-tenants: making %s tenant schemas", n_tenants)
        create = timed(python, "-m", "bench.django_tenants_schemas", "--tenants", str(n_tenants))
        with psycopg.connect(_dsn(project_settings.DATABASE_NAME)) as connection:
            made = len(tenant_schemas(connection))
        if made != n_tenants:
            raise RuntimeError(f"{made} tenant schemas made, not {n_tenants}")
        logger.info("django-tenants: %s schemas in %.0f s; migrate_schemas, nothing to apply", made, create)
        nothing = migrate_schemas(python, executor)
        logger.info("django-tenants: nothing to apply in %.1f s; migrate_schemas, one migration", nothing)
        began = time.time()
        one = migrate_schemas(python, executor, settings=RELEASE_SETTINGS)
        logger.info("django-tenants: one migration in %.1f s", one)
        _, column, index = schemas_with_release()
        applied = applied_since(began)
    finally:
        drop_database()
    return {
        "nothing_to_apply_seconds": nothing,
        "one_migration_seconds": one,
        "one_migration_applied": applied,  # seconds from the command's start to each schema's migration (charts)
        "create_seconds": create,
        "schemas_with_column": column,
        "schemas_with_index": index,
        "versions": django_tenants_env.installed_versions(),
        "processes": project_settings.TENANT_MULTIPROCESSING_MAX_PROCESSES,
        "executor": executor,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, required=True)
    parser.add_argument("--executor", default="multiprocessing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(json.dumps(measure(args.tenants, executor=args.executor), indent=2))


if __name__ == "__main__":
    main()
