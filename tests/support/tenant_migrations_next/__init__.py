"""The tenants app's migrations plus one more: what a release with a new tenant-side migration looks like.

Tests point MIGRATION_MODULES["tenants"] here (tests.settings_next_migrations does it for a subprocess).
"""
