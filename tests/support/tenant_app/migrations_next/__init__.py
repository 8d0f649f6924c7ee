"""The next release of the suite's tenant app: today's migrations (this package's path includes their folder, so
no file is copied) plus 0004, a column and an index: the shape of most tenant-side releases. Tests point
MIGRATION_MODULES["tenant_notes"] here."""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parent.parent / "migrations"))
