"""The project's settings as the next release of a SaaS built on Diquis has them: its tenant app (the suite's,
tests.support.tenant_app) with one more migration (a column and an index)."""

from diquis.settings import *  # noqa: F403

MIGRATION_MODULES = {"tenant_notes": "tests.support.tenant_app.migrations_next"}
