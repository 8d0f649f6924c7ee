"""The tenants app's migrations plus one more: what a release with a new tenant-side migration looks like. This
package's path includes the app's own migrations folder, so none of them is copied here: only the new one.

Tests point MIGRATION_MODULES["tenants"] here (tests.support.tenant_databases.NEXT_RELEASE in process;
tests.support.settings_next_migrations for a subprocess, the benchmark of `migrate_tenants` included). Its
migration depends on the app's last one: a new migration of the app moves that dependency along.
"""

from pathlib import Path

import tenants.migrations

__path__.append(str(Path(tenants.migrations.__file__).resolve().parent))
