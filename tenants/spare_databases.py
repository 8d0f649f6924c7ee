"""Spare tenant databases: clones of the current template made ahead of time, so that creating an isolated
tenant renames one (`ALTER DATABASE ... RENAME`, about a millisecond) instead of cloning while its admin
waits (`CREATE DATABASE ... TEMPLATE` writes the whole template through the WAL: tens to hundreds of ms,
with the disk).

- A spare is named after the template it is a clone of: `<template name>_spare_<random>`. Tenant ids may
  not start with the template label, so no tenant's database can take a spare's name; and when the
  migration graph changes, the old template's spares are dropped with it (drop_stale_templates).
- Claiming is the rename itself, atomic in the server: two jobs never get the same spare. The loser of a
  race tries the next one; with none left, the tenant's database is cloned as before.
- Once an isolated tenant is created, a durable job (visible with the others) tops the spares up to
  DIQUIS_SPARE_TENANT_DATABASES, outside any tenant's wait. 0 turns spares off. PostgreSQL only: on
  SQLite a clone is a file copy already.
"""

import logging
import secrets

from django.conf import settings
from django.db import DatabaseError
from psycopg import errors

from jobs.enqueue import enqueue
from jobs.models import Job

from . import database_server
from .databases import main_vendor

logger = logging.getLogger(__name__)

SPARE_LABEL = "spare"
REFILL_SUBJECT = "tenant-database-spares"


def enabled():
    return settings.DIQUIS_SPARE_TENANT_DATABASES > 0 and main_vendor() == "postgresql"


def spare_prefix(template):
    return f"{template}_{SPARE_LABEL}_"


def spares_of(template):
    return database_server.names_starting_with(spare_prefix(template))


def claim(name, template):
    """Give `name` to one of `template`'s spares. False when none could be had."""
    for spare in spares_of(template):
        try:
            database_server.rename(spare, name)
        except DatabaseError as error:
            if isinstance(error.__cause__, (errors.InvalidCatalogName, errors.ObjectInUse)):
                continue  # another job renamed it a moment ago, or a session is on it: the next one
            raise
        logger.info("database %s is spare %s", name, spare)
        return True
    return False


def take(name, template):
    """Claim a spare for `name` when spares are on. True when claimed."""
    return enabled() and claim(name, template)


def refill(template):
    """Clone `template` until it has DIQUIS_SPARE_TENANT_DATABASES spares. Returns how many were made."""
    missing = max(settings.DIQUIS_SPARE_TENANT_DATABASES - len(spares_of(template)), 0)
    for _ in range(missing):
        database_server.create(f"{spare_prefix(template)}{secrets.token_hex(4)}", template=template)
    return missing


def request_refill():
    """Enqueue a refill, when spares are on, unless one waits already (a running one may have counted before
    the last claim). Called once an isolated tenant is created and its admin told: not on anyone's wait."""
    if not enabled():
        return
    waiting = Job.objects.filter(subject=REFILL_SUBJECT, status__in=[Job.Status.QUEUED, Job.Status.RETRY_WAIT])
    if not waiting.exists():
        from .tasks import refill_spare_databases  # the task module imports the provisioning steps

        enqueue(refill_spare_databases, subject=REFILL_SUBJECT)
