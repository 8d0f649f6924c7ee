"""What a job does to a tenant's data: ensure its database exists and is migrated, ensure its first admin,
and remove it all.

Shared tenants live in the main database: nothing to create, their rows are deleted on deprovisioning.
Isolated tenants get a database of their own (tenants.connections names it and connects to it), cloned
from the current template (template.py), or created empty and migrated where cloning fails, and on PostgreSQL a
role of their own to reach it through (roles.py); migrations run as the server's own role. Every
function is idempotent ("ensure", never "create"): a retry after a crash at any point finishes the work.
The steps return what they did, for the next step and the log; nothing is parked on the tenant.
"""

import logging

from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from ..connections import (
    alias_name,
    database_name_for,
    forget_database,
    platform_alias_for,
    platform_alias_name,
    release_connection,
    use_tenant,
)
from ..models import Role, User
from ..vault import decrypt_password
from . import faults, placement, roles, spares
from .stores import store_for
from .template import ensure_template

logger = logging.getLogger(__name__)

# How an isolated tenant's database came to be (ensure_tenant_database). The first two are at the head of
# the migration graph by construction: the template is.
CLAIMED = "a spare clone"
CLONED = "cloned"
CREATED = "created"
AT_HEAD = frozenset({CLAIMED, CLONED})

# Fault points (tenants.provisioning.faults) inside the database steps: the database made (dropped), its role not yet.
DATABASE_MADE = "database-made"
DATABASE_DROPPED = "database-dropped"


def create_database(store, name):
    """Give `name` a spare clone of the current template, or clone it now; where that fails, create it empty
    (to be migrated). Returns CLAIMED, CLONED or CREATED."""
    try:
        template = ensure_template(store)
        if spares.claim(store, name, template):
            return CLAIMED
        store.clone(name, template)
        return CLONED
    except Exception:
        logger.warning("cloning the template into %s failed; creating it empty to migrate it", name, exc_info=True)
    store.create(name)
    return CREATED


def ensure_tenant_database(tenant):
    """Give an isolated tenant its database, on the server it was placed on (placed now, if it was not yet).
    Returns how it was made, or None if it was there already (or the tenant is shared)."""
    if not tenant.has_isolated_database:
        return None
    if tenant.database_server_id is None:
        placement.place(tenant)
    name = tenant.database_name or database_name_for(tenant.id)
    if tenant.database_name != name:
        # Named in the catalog before it is made, never after: a creation cut (or failed for good) once the
        # server has made the database leaves none the catalog does not know. Until the tenant is provisioned
        # the name is a reservation (the database may not be there yet); a retry makes it, a deletion drops it.
        tenant.database_name = name
        tenant.save(update_fields=["database_name"])
    store = store_for(tenant.database_server_id)
    how = None
    if not store.exists(name):
        how = create_database(store, name)
        logger.info("database %s of tenant %s %s", name, tenant.id, how)
        faults.check(DATABASE_MADE, tenant.id)  # tests: the database made, its role not yet
    # Every time, not only when created: a spare renamed to the tenant gets its role here, and a retry after a
    # crash between the creation and this finishes the work.
    roles.ensure_tenant_role(store, name)
    return how


def has_pending_migrations(alias):
    """Does `migrate` have anything to apply to this database? One read of its django_migrations table.

    A database cloned from the template is at the head by construction, as is every database after a deploy
    whose migrations touch only the main database: `migrate` itself would find nothing to do, but only after
    its checks, signals and bookkeeping.
    """
    executor = MigrationExecutor(connections[alias])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def migrate_tenant_database(tenant):
    """Apply pending migrations to an isolated tenant's database, as the server's own role (the tenant's may
    not change the schema). Returns whether any was pending."""
    alias = platform_alias_for(tenant)
    try:
        pending = has_pending_migrations(alias)
        if pending:
            call_command("migrate", database=alias, interactive=False, verbosity=0)
    finally:
        release_connection(alias)
    if pending:  # a database created empty got django_migrations just now: the role may only read it
        ensure_tenant_role(tenant)
    return pending


def ensure_migrated(tenant, *, created=None):
    """Migrate an isolated tenant's database; `created`, what ensure_tenant_database did in this attempt:
    a database it has just cloned is at the head, and not even checked. Returns whether it migrated."""
    if not tenant.has_isolated_database or created in AT_HEAD:
        return False
    return migrate_tenant_database(tenant)


def ensure_admin_user(tenant):
    """The tenant's first admin, in the tenant's own database; then the stored password is erased. Returns
    whether the user was created now."""
    with use_tenant(tenant):
        created = not User.objects.filter(tenant_id=tenant.id, email=tenant.admin_email.lower()).exists()
        if created:
            password = decrypt_password(tenant.encrypted_admin_password)
            User.objects.create_user(tenant.admin_email, password, tenant_id=tenant.id, roles=[Role.ADMIN])
    if tenant.encrypted_admin_password:
        tenant.encrypted_admin_password = None
        tenant.save(update_fields=["encrypted_admin_password"])
    return created


def drop_tenant_data(tenant):
    """Remove everything of the tenant's: its database when isolated (DROP ... WITH (FORCE) terminates
    the sessions still on it), its rows when shared."""
    if not tenant.has_isolated_database:
        User.objects.using("default").filter(tenant_id=tenant.id).delete()
        return
    name = tenant.database_name or database_name_for(tenant.id)
    forget_database(alias_name(tenant.id), name)
    forget_database(platform_alias_name(tenant.id))
    store = store_for(tenant.database_server_id)
    store.drop(name)
    if tenant.database_name is not None:
        # Gone: the catalog stops naming it now, not with the row's deletion, so a deletion cut (or failed for good)
        # after the drop names no database that is not there. A retry finds the name by the tenant's id.
        tenant.database_name = None
        tenant.save(update_fields=["database_name"])
    faults.check(DATABASE_DROPPED, tenant.id)  # tests: the database dropped, its role not yet
    roles.drop_tenant_role(store, name)  # after its database: the role's privileges were there and on it


def ensure_tenant_role(tenant):
    """The tenant's role as it should be: its password from the current SECRET_KEY, its privileges on tables
    of every migration (what `migrate_tenants` checks for each tenant after migrating it)."""
    if tenant.has_isolated_database and tenant.database_name:
        roles.ensure_tenant_role(store_for(tenant.database_server_id), tenant.database_name)
