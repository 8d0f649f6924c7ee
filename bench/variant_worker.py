"""`python -m bench.variant_worker`: the documented worker (`rqworker --with-scheduler`), with bench-only
variants of isolated provisioning picked by the tenant's id, so one worker serves every path and the
bench can interleave them tenant by tenant (on a shared, noisy machine, paths measured minutes apart
are not comparable; measured alternately, they are):

- `cln-…`: no spare database is taken (tenants.provisioning.spares): the template is cloned while the
  tenant waits, as with DIQUIS_SPARE_TENANT_DATABASES=0;
- `fbk-…`: neither a spare nor a clone can be had, so the database takes the create-and-migrate fallback of
  tenants.provisioning.databases (created empty; the "Applying migrations" step migrates it).

Every other tenant is provisioned exactly as by `manage.py rqworker --with-scheduler`. The variants live in
a DatabaseStore of the bench's own, given to the worker through the DIQUIS_TENANT_DATABASE_STORE setting:
no production function is replaced.
"""

import django
from django.apps import apps

if not apps.ready:  # run as `-m`: tenants.provisioning.stores imports the tenants models (DatabaseServer)
    django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import DatabaseError  # noqa: E402
from django.test import override_settings  # noqa: E402
from psycopg import errors  # noqa: E402

from tenants.provisioning.stores import PostgreSQLStore  # noqa: E402

FALLBACK_PREFIX = "fbk-"
CLONE_PREFIX = "cln-"


class VariantStore(PostgreSQLStore):
    """The main server's store, but for the databases of the variants' tenants."""

    def rename(self, name, new_name):
        if CLONE_PREFIX in new_name or FALLBACK_PREFIX in new_name:
            # What the server says of a spare someone is connected to: the claim passes it over.
            raise DatabaseError(f"bench: no spare for {new_name}") from errors.ObjectInUse()
        super().rename(name, new_name)

    def clone(self, name, template):
        if FALLBACK_PREFIX in name:
            raise RuntimeError("bench: cloning disabled to measure the create-and-migrate fallback")
        super().clone(name, template)


def main():
    with override_settings(DIQUIS_TENANT_DATABASE_STORE="bench.variant_worker.VariantStore"):
        call_command("rqworker", "--with-scheduler")


if __name__ == "__main__":
    main()
