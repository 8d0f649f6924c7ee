"""The next release of bench.tenant_product: today's migrations (this package's path includes their folder, so
no file is copied) plus 0023, a column and an index on the orders table. bench.settings_release points
MIGRATION_MODULES["tenant_product"] here."""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parent.parent / "migrations"))
