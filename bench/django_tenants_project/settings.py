"""Settings of the django-tenants project: one PostgreSQL database, a schema per tenant, as django-tenants'
installation guide sets it up, and nothing more than `migrate_schemas` needs.

The database is the bench's own (BENCH_DT_DATABASE, bench_dt_tenants by default): bench.upgrades_django_tenants
creates and drops it, so its name must say "bench". The server is the bench's (local, user postgres, trusted).
TENANT_MULTIPROCESSING_MAX_PROCESSES is the machine's 2 cores. This module is plain data, no Django import: the
main venv reads DATABASES from it too.
"""

import os

DATABASE_NAME = os.environ.get("BENCH_DT_DATABASE", "bench_dt_tenants")
if "bench" not in DATABASE_NAME:
    raise ValueError(f"BENCH_DT_DATABASE is {DATABASE_NAME!r}: the bench drops it, so its name must contain 'bench'")

SECRET_KEY = "bench-django-tenants-not-a-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": DATABASE_NAME,
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "USER": "postgres",
    }
}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

SHARED_APPS = [
    "django_tenants",
    "bench.django_tenants_project.customers",
    "django.contrib.contenttypes",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "bench.tenant_product",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
TENANT_MULTIPROCESSING_MAX_PROCESSES = 2
