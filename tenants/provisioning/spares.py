"""Spare tenant databases: clones of the current template made ahead of time, so that creating an isolated
tenant renames one (`ALTER DATABASE ... RENAME`) instead of cloning while its admin waits (`CREATE DATABASE
... TEMPLATE` writes the whole template through the WAL; bench/RESULTS.md has the figures).

- A spare is named after the template it is a clone of: `<template name>_spare_<random>`. Tenant ids may
  not start with the template label, so no tenant's database can take a spare's name; and when the
  migration graph changes, the old template's spares are dropped with it (template.drop_stale_templates).
- Claiming is the rename itself, atomic in the server: two jobs never get the same spare. The loser of a
  race tries the next one; with none left, the tenant's database is cloned as before.
- Once an isolated tenant is created, a durable job (tenants.tasks) tops the spares up to
  DIQUIS_SPARE_TENANT_DATABASES, outside any tenant's wait. 0 turns spares off. PostgreSQL only: on
  SQLite a clone is a file copy already.
"""

import logging
import secrets

from django.conf import settings
from django.db import DatabaseError
from psycopg import errors

logger = logging.getLogger(__name__)

SPARE_LABEL = "spare"


def enabled(store):
    return settings.DIQUIS_SPARE_TENANT_DATABASES > 0 and store.vendor == "postgresql"


def spare_prefix(template):
    return f"{template}_{SPARE_LABEL}_"


def spares_of(store, template):
    return store.list(spare_prefix(template))


def claim(store, name, template):
    """Give `name` one of `template`'s spares, when spares are on. False when none could be had."""
    if not enabled(store):
        return False
    for spare in spares_of(store, template):
        try:
            store.rename(spare, name)
        except DatabaseError as error:
            if isinstance(error.__cause__, (errors.InvalidCatalogName, errors.ObjectInUse)):
                continue  # another job renamed it a moment ago, or a session is on it: the next one
            raise
        logger.info("database %s is spare %s", name, spare)
        return True
    return False


def refill(store, template):
    """Clone `template` until it has DIQUIS_SPARE_TENANT_DATABASES spares. Returns how many were made."""
    missing = max(settings.DIQUIS_SPARE_TENANT_DATABASES - len(spares_of(store, template)), 0)
    for _ in range(missing):
        store.clone(f"{spare_prefix(template)}{secrets.token_hex(4)}", template)
    return missing
