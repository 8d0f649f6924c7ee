"""The tenants app's migrations plus one more, as the next release would have them: what
`migrate_tenants` has real work to do with (bench.settings_next_migration points MIGRATION_MODULES here)."""
