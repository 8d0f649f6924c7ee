"""The tenants app's migrations plus one more: what a release with a new tenant-side migration looks like.

Tests point MIGRATION_MODULES["tenants"] here (tests.support.tenant_databases.NEXT_RELEASE in process;
tests.support.settings_next_migrations for a subprocess, the benchmark of `migrate_tenants` included).
"""
