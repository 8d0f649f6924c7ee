"""The template an isolated tenant's database is cloned from, migrated to the current head.

Cloning a migrated database (`CREATE DATABASE ... TEMPLATE`; a file copy on SQLite) is much faster than
migrating an empty one. A template must never be stale: its name carries a fingerprint of the migration
graph (every migration's name and source, and which models and apps are tenant-side), so a new or changed
migration names a new template, which the first job to need it builds, once, under a lock. The previous
templates are dropped then. On PostgreSQL the template refuses connections once built, so nothing can
hold it open and make a clone fail.
"""

import hashlib
import logging
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader

from ..connections import temporary_connection
from ..models import MAIN_SERVER
from ..routing import TENANT_SIDE_MODELS, tenant_app_labels

logger = logging.getLogger(__name__)

# Templates are named <prefix>template_<fingerprint>. Tenant ids may not start with this label
# (tenants.validators), so no tenant's database can ever take a template's name.
TEMPLATE_LABEL = "template"
BUILD_LOCK_KEY = "tenant-database-templates"


def migration_fingerprint():
    """A short hash of everything `migrate` would do to a tenant database."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    digest = hashlib.sha256()
    for key in sorted(graph.nodes):
        digest.update(repr(key).encode())
        source = getattr(sys.modules.get(type(graph.nodes[key]).__module__), "__file__", None)
        if source and Path(source).is_file():
            digest.update(Path(source).read_bytes())
    digest.update(repr(sorted(TENANT_SIDE_MODELS)).encode())
    digest.update(repr(sorted(tenant_app_labels())).encode())
    return digest.hexdigest()[:12]


def template_prefix():
    return f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}{TEMPLATE_LABEL}_"


def template_name(fingerprint=None):
    return f"{template_prefix()}{fingerprint or migration_fingerprint()}"


def migrate_database(database_name, *, server=MAIN_SERVER):
    """Apply every migration to a database through a connection that is closed and forgotten after."""
    with temporary_connection(database_name, server=server) as alias:
        call_command("migrate", database=alias, interactive=False, verbosity=0)


def ensure_template(store):
    """The name of the current template in `store`, building it first if no process has yet. Every server
    has its own, of the same name (and fingerprint)."""
    name = template_name()
    if store.exists(name):
        return name
    with store.exclusive(BUILD_LOCK_KEY):
        if not store.exists(name):
            _build(store, name)
            drop_stale_templates(store, keep=name)
    return name


def _build(store, name):
    """Migrate under a scratch name, then publish: the final name appears only once it is complete."""
    building = f"{name}_building"
    logger.info("building tenant database template %s", name)
    store.drop(building)  # what a crashed build left behind
    store.create(building)
    try:
        migrate_database(building, server=store.server)
        store.publish(building, name)
    except BaseException:
        store.drop(building)
        raise


def drop_stale_templates(store, *, keep):
    """Every other template, and the spare clones of every other template (spares.py)."""
    for name in store.list(template_prefix()):
        if name != keep and not name.startswith(f"{keep}_"):
            logger.info("dropping stale tenant database template %s", name)
            store.drop(name)
