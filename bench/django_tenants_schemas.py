"""The N tenant schemas of section 8's django-tenants side, made as fast as is fair (their making is not measured).

`python -m bench.django_tenants_schemas --tenants N`, in the django-tenants venv (bench.django_tenants_env) with
DJANGO_SETTINGS_MODULE=bench.django_tenants_project.settings, in the database bench.upgrades_django_tenants made:

- `migrate_schemas --shared`: the public schema (the customers app, contenttypes, their django_migrations);
- one reference tenant the normal way: its Client saved, which makes its schema and has django-tenants migrate it
  (bench.tenant_product's 22 migrations);
- the other N - 1 as copies of it: the reference schema dumped once (`pg_dump -n`), then, for each copy in one psql
  session, in a transaction of its own, the reference schema renamed to the copy's name and the dump restored, which
  makes the reference again. A rename is a catalog change only, and everything inside a schema refers to the rest by
  OID (identity sequences, defaults, foreign keys, indexes), so the renamed schema is whole; the dump is never
  rewritten. About 0.15 s a copy on the bench machine; django-tenants' own CloneSchema (a PL/pgSQL function that
  rebuilds each object from the catalogs) took 0.7 s;
- their Client and Domain rows, in bulk (bulk_create saves no model, so makes no schema).

Tenant schemas are t0001, t0002, ... (`schema_names`), so every schema of the database but public is a tenant's.
"""

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import django

REFERENCE = 1
DOMAIN_SUFFIX = ".bench.test"


def schema_names(count):
    return [f"t{i:04d}" for i in range(1, count + 1)]


def _libpq_args():
    from django.conf import settings

    database = settings.DATABASES["default"]
    return ["-h", database["HOST"], "-p", str(database["PORT"]), "-U", database["USER"], "-d", database["NAME"]]


def _run(argv, stdin=None):
    completed = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed:\n{completed.stderr[-3000:]}")


def make_reference(schema_name):
    """The reference tenant, made the normal way: its Client saved, its schema made and migrated by django-tenants."""
    from bench.django_tenants_project.customers.models import Client, Domain

    client = Client(schema_name=schema_name, name=schema_name)
    client.save(verbosity=0)
    Domain.objects.create(domain=f"{schema_name}{DOMAIN_SUFFIX}", tenant=client, is_primary=True)


def copy_reference(reference, copies):
    """Each schema of `copies` made as the reference: see the module's docstring."""
    if not copies:
        return
    with tempfile.TemporaryDirectory(prefix="bench-dt-") as directory:
        dump = Path(directory) / "reference.sql"
        _run(["pg_dump", *_libpq_args(), "--schema", reference, "--file", str(dump)])
        script = "".join(
            f"BEGIN;\nALTER SCHEMA {reference} RENAME TO {copy};\n\\i '{dump}'\nCOMMIT;\n" for copy in copies
        )
        _run(["psql", *_libpq_args(), "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1"], stdin=script)


def add_rows(copies):
    """The copies' Client and Domain rows, as the reference's."""
    from bench.django_tenants_project.customers.models import Client, Domain

    clients = Client.objects.bulk_create(Client(schema_name=name, name=name) for name in copies)
    Domain.objects.bulk_create(
        Domain(domain=f"{client.schema_name}{DOMAIN_SUFFIX}", tenant=client, is_primary=True) for client in clients
    )


def make_schemas(count):
    from django.core.management import call_command

    names = schema_names(count)
    reference, copies = names[REFERENCE - 1], names[REFERENCE:]
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    make_reference(reference)
    copy_reference(reference, copies)
    add_rows(copies)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_tenants_project.settings")
    django.setup()
    make_schemas(args.tenants)


if __name__ == "__main__":
    main()
