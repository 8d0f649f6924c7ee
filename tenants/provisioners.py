"""The database side of a tenant: ensure its database exists and is migrated, and drop it.

Shared tenants live in the main database: nothing to create, their rows are deleted on deprovisioning.
Isolated tenants get a database of their own (see tenants.databases for its name and connection),
cloned from the current template (tenants.template_database), or created empty and migrated where
cloning fails. Every function is idempotent: a retry after a crash at any point finishes the work.
"""

import logging

from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from . import spare_databases
from .databases import alias_for, alias_name, database_name_for, forget_database, release_connection
from .models import User
from .template_database import database_store, ensure_template

logger = logging.getLogger(__name__)

CLONED = "cloned"
CLAIMED = "a spare clone"
CREATED = "created"


def create_database(name):
    """Give `name` a spare clone of the current template, or clone it now; where that fails, create it empty
    (then migrated)."""
    store = database_store()
    try:
        template = ensure_template()
        if spare_databases.take(name, template):
            return CLAIMED
        store.create(name, template=template)
        return CLONED
    except Exception:
        logger.warning("cloning the template into %s failed; creating it empty to migrate it", name, exc_info=True)
    store.create(name)
    return CREATED


def ensure_tenant_database(tenant):
    """Give an isolated tenant its database (no-op for shared tenants). Returns its name."""
    if not tenant.has_isolated_database:
        return None
    name = tenant.database_name or database_name_for(tenant.id)
    if not database_store().exists(name):
        how = create_database(name)
        tenant.cloned_at_head = how in (CLONED, CLAIMED)
        logger.info("database %s of tenant %s %s", name, tenant.id, how)
    if tenant.database_name != name:
        tenant.database_name = name
        tenant.save(update_fields=["database_name"])
    return name


def has_pending_migrations(alias):
    """Does `migrate` have anything to apply to this database? One read of its django_migrations table.

    A database cloned from the template is at the head by construction, as is every database after a deploy
    whose migrations touch only the main database: `migrate` itself would find nothing to do, but only after
    its checks, signals and bookkeeping (~25 ms a database, a tenth of a cloned tenant's provisioning).
    """
    executor = MigrationExecutor(connections[alias])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def migrate_tenant_database(tenant):
    """Apply pending migrations to an isolated tenant's database (nothing to do on a fresh clone)."""
    alias = alias_for(tenant)
    try:
        if has_pending_migrations(alias):
            call_command("migrate", database=alias, interactive=False, verbosity=0)
    finally:
        release_connection(alias)


def ensure_migrated(tenant):
    """Migrate an isolated tenant's database; one this attempt has just cloned is not even checked."""
    if tenant.has_isolated_database and not tenant.cloned_at_head:
        migrate_tenant_database(tenant)


def drop_tenant_data(tenant):
    """Remove everything of the tenant's: its database when isolated (DROP ... WITH (FORCE) terminates
    the sessions still on it), its rows when shared."""
    if not tenant.has_isolated_database:
        User.objects.using("default").filter(tenant_id=tenant.id).delete()
        return
    name = tenant.database_name or database_name_for(tenant.id)
    forget_database(alias_name(tenant.id))
    database_store().drop(name)
