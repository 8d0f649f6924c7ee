"""`python -m bench.fallback_worker`: the documented worker (`rqworker --with-scheduler`), except that the
databases of tenants whose id starts with `fbk-` cannot be cloned, so those take the create-and-migrate
fallback of tenants.provisioners (created empty; the "Applying migrations" step migrates them).

One worker then serves both paths, and the bench interleaves them tenant by tenant: on a shared, noisy
machine, two paths measured minutes apart are not comparable; measured alternately, they are.
"""

import contextvars

import django
from django.core.management import call_command

FALLBACK_PREFIX = "fbk-"
_cloning_disabled = contextvars.ContextVar("bench_cloning_disabled", default=False)


def main():
    django.setup()
    from tenants import provisioners

    original_create, original_template = provisioners.create_database, provisioners.ensure_template

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

    provisioners.create_database, provisioners.ensure_template = create_database, ensure_template
    call_command("rqworker", "--with-scheduler")


if __name__ == "__main__":
    main()
