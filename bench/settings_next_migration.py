"""The bench settings as a release with one more tenant-side migration would have them."""

from bench.settings import *  # noqa: F403

MIGRATION_MODULES = {"tenants": "bench.tenant_migrations_next"}
