"""`python -m bench.variant_worker`: the documented worker (`rqworker --with-scheduler`), with bench-only
variants of isolated provisioning picked by the tenant's id, so one worker serves every path and the
bench can interleave them tenant by tenant (on a shared, noisy machine, paths measured minutes apart
are not comparable; measured alternately, they are):

- `cln-…`: no spare database is taken (tenants.spare_databases): the template is cloned while the tenant
  waits, as with DIQUIS_SPARE_TENANT_DATABASES=0;
- `fbk-…`: the template cannot be cloned, so the database takes the create-and-migrate fallback of
  tenants.provisioners (created empty; the "Applying migrations" step migrates it).

Every other tenant is provisioned exactly as by `manage.py rqworker --with-scheduler`.
"""

import contextvars

import django
from django.core.management import call_command

FALLBACK_PREFIX = "fbk-"
CLONE_PREFIX = "cln-"
_cloning_disabled = contextvars.ContextVar("bench_cloning_disabled", default=False)


def main():
    django.setup()
    from tenants import provisioners, spare_databases

    original_create, original_template = provisioners.create_database, provisioners.ensure_template
    original_take = spare_databases.take

    def create_database(name):
        token = _cloning_disabled.set(FALLBACK_PREFIX in name)
        try:
            return original_create(name)
        finally:
            _cloning_disabled.reset(token)

    def ensure_template():
        if _cloning_disabled.get():
            raise RuntimeError("bench: cloning disabled to measure the create-and-migrate fallback")
        return original_template()

    def take(name, template):
        return False if CLONE_PREFIX in name else original_take(name, template)

    provisioners.create_database, provisioners.ensure_template = create_database, ensure_template
    spare_databases.take = take
    call_command("rqworker", "--with-scheduler")


if __name__ == "__main__":
    main()
