"""The template an isolated tenant's database is cloned from, migrated to the current head.

Cloning a migrated database (`CREATE DATABASE ... TEMPLATE`; a file copy on SQLite) is much faster than
migrating an empty one. A template must never be stale: its name carries a fingerprint of the migration
graph (every migration's name and source, and which models and apps are tenant-side), so a new or changed
migration names a new template, which the first job to need it builds, once, under a lock. The previous
templates are dropped then (an upgrade drops them after its end: retire_stale_templates). On PostgreSQL the
template refuses connections once built, so nothing can hold it open and make a clone fail.

A new release's template is derived from the previous one where that is exactly what a build from scratch would
give: a clone of it, brought to the head by the upgrade's own compiled plan (provisioning.upgrades.Planner) in one
transaction, instead of Django's executor replaying every migration into a project state (seconds of CPU for a
product of a few dozen models). Each template carries a manifest (its database's comment, which a clone does not
inherit) of the routing and of each applied migration's source digest; it is derived from only when the routing is
the same, every migration it applied is unchanged in this release (an edited migration would make the clone differ
from a fresh build), its django_migrations says the same, and the plan compiles (no RunPython, nothing
non-atomic, no squashed migration: the Planner decides). Otherwise, and on SQLite, it is built from scratch.
"""

import hashlib
import json
import logging
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django.db.migrations.loader import MigrationLoader

from ..connections import temporary_connection
from ..models import MAIN_SERVER
from ..routing import TENANT_SIDE_MODELS, tenant_app_labels
from . import faults
from .upgrades import Planner

logger = logging.getLogger(__name__)

# Templates are named <prefix>template_<fingerprint>. Tenant ids may not start with this label
# (tenants.validators), so no tenant's database can ever take a template's name.
TEMPLATE_LABEL = "template"
BUILD_LOCK_KEY = "tenant-database-templates"
# Fault injection point of the tests (provisioning.faults): a worker killed with the derived clone's transaction open.
DERIVE_BEFORE_COMMIT = "template-derive-before-commit"


def _migration_sources():
    """(app, name) -> the bytes of its module's source (b"" when it has no file), for every migration."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    sources = {}
    for key in sorted(graph.nodes):
        source = getattr(sys.modules.get(type(graph.nodes[key]).__module__), "__file__", None)
        sources[key] = Path(source).read_bytes() if source and Path(source).is_file() else b""
    return sources


def _routing():
    return repr(sorted(TENANT_SIDE_MODELS)).encode() + repr(sorted(tenant_app_labels())).encode()


def migration_fingerprint():
    """A short hash of everything `migrate` would do to a tenant database."""
    digest = hashlib.sha256()
    for key, source in _migration_sources().items():
        digest.update(repr(key).encode())
        digest.update(source)
    digest.update(_routing())
    return digest.hexdigest()[:12]


def template_manifest():
    """What a template built now is made of: the routing's digest and each migration's source digest (None: no
    source file to compare, so never derived from)."""
    return {
        "routing": hashlib.sha256(_routing()).hexdigest(),
        "migrations": {
            f"{app}.{name}": hashlib.sha256(source).hexdigest() if source else None
            for (app, name), source in _migration_sources().items()
        },
    }


def template_prefix():
    return f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}{TEMPLATE_LABEL}_"


def template_name(fingerprint=None):
    return f"{template_prefix()}{fingerprint or migration_fingerprint()}"


def migrate_database(database_name, *, server=MAIN_SERVER):
    """Apply every migration to a database through a connection that is closed and forgotten after."""
    with temporary_connection(database_name, server=server) as alias:
        call_command("migrate", database=alias, interactive=False, verbosity=0)


def ensure_template(store, *, retire_stale=True):
    """The name of the current template in `store`, building it first if no process has yet. Every server
    has its own, of the same name (and fingerprint). The stale ones are dropped after a build, unless
    `retire_stale` is false: then the caller retires them later (retire_stale_templates)."""
    name = template_name()
    if store.exists(name):
        return name
    with store.exclusive(BUILD_LOCK_KEY):
        if not store.exists(name):
            _build(store, name)
            if retire_stale:
                drop_stale_templates(store, keep=name)
    return name


def retire_stale_templates(store):
    """Drop the stale templates and their spares, once the current one is built (until then they are what it
    is derived from). Under the build lock: a build in progress keeps its scratch copy. Each DROP DATABASE waits
    for a checkpoint of the whole server (PostgreSQL's own), seconds after a busy while: an upgrade retires them
    after its end, not while its tenants wait."""
    name = template_name()
    if not store.exists(name):
        return
    with store.exclusive(BUILD_LOCK_KEY):
        drop_stale_templates(store, keep=name)


def _build(store, name):
    """Derive or migrate under a scratch name, then publish: the final name appears only once it is complete."""
    building = f"{name}_building"
    store.drop(building)  # what a crashed build left behind
    manifest = template_manifest()
    try:
        if not _derive(store, building, name, manifest):
            logger.info("building tenant database template %s", name)
            store.create(building)
            migrate_database(building, server=store.server)
        store.set_manifest(building, json.dumps(manifest, sort_keys=True))
        store.publish(building, name)
    except BaseException:
        store.drop(building)
        raise


def _derive(store, building, name, manifest):
    """`building` made from a previous template (see the module's docstring); False, and no `building` left, when
    none may be used."""
    for previous in _previous_templates(store, keep=name):
        recorded = _recorded(store, previous)
        if recorded is None or recorded["routing"] != manifest["routing"]:
            continue
        applied = recorded["migrations"]
        if any(digest is None or manifest["migrations"].get(key) != digest for key, digest in applied.items()):
            continue
        store.clone(building, previous)
        if _upgrade_clone(building, set(applied), server=store.server):
            logger.info("derived tenant database template %s from %s", name, previous)
            return True
        store.drop(building)
    return False


def _previous_templates(store, *, keep):
    """The other templates of `store`: names of the same length as `keep` (their spares and scratch copies are
    longer)."""
    return [name for name in store.list(template_prefix()) if name != keep and len(name) == len(keep)]


def _recorded(store, template):
    """The template's manifest, or None when it has none of the expected shape (a template of an older
    release, or one not made here): then it is never derived from."""
    try:
        recorded = json.loads(store.manifest(template) or "null")
    except ValueError:
        return None
    if isinstance(recorded, dict) and isinstance(recorded.get("migrations"), dict) and "routing" in recorded:
        return recorded
    return None


def _upgrade_clone(database_name, applied, *, server):
    """The clone brought to the head by the compiled plan, in one transaction; False (nothing done) when its
    django_migrations is not what its manifest says or the plan does not compile."""
    with temporary_connection(database_name, server=server) as alias:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT app, name FROM django_migrations")
            rows = frozenset(cursor.fetchall())
        if {f"{app}.{name}" for app, name in rows} != applied:
            return False
        plan = Planner().plan_for(rows, compile_on=alias)
        if plan.migrations and plan.statements is None:
            return False
        if plan.statements:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute(plan.statements)
                faults.check(DERIVE_BEFORE_COMMIT, None)
    return True


def drop_stale_templates(store, *, keep):
    """Every other template, and the spare clones of every other template (spares.py)."""
    for name in store.list(template_prefix()):
        if name != keep and not name.startswith(f"{keep}_"):
            logger.info("dropping stale tenant database template %s", name)
            store.drop(name)
