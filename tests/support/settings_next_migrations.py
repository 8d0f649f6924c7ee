"""The project's settings as a release with one more tenant-side migration would have them."""

from diquis.settings import *  # noqa: F403

MIGRATION_MODULES = {"tenants": "tests.support.tenant_migrations_next"}
