"""Where a tenant's data lives, and the connection to it.

A shared tenant uses the main database (`default`). An isolated tenant has a database of its own, known
to Django under the alias `tenant_<id>`, registered on first use with the main database's settings and
its own name. Connections to tenant databases are closed when the request or job that used them ends,
so a process that has served many tenants does not hold a connection to each.
"""

import contextlib
import copy

from django.conf import settings
from django.db import connections

from .routing import use_database

ALIAS_PREFIX = "tenant_"


def database_name_for(tenant_id):
    """A safe, unique database name for a tenant (≤ 63 bytes: PostgreSQL's identifier limit)."""
    return f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}{tenant_id}"


def alias_for(tenant):
    if not (tenant.has_isolated_database and tenant.database_name):
        return "default"
    alias = f"{ALIAS_PREFIX}{tenant.id}"
    if alias not in connections.settings:
        register_database(alias, tenant.database_name)
    return alias


def main_vendor():
    return connections["default"].vendor


def sqlite_path_for(database_name):
    return str(settings.DIQUIS_TENANT_SQLITE_DIR / f"{database_name}.sqlite3")


def register_database(alias, database_name):
    config = copy.deepcopy(connections.settings["default"])
    config["NAME"] = sqlite_path_for(database_name) if main_vendor() == "sqlite" else database_name
    config["TEST"] = {**config.get("TEST", {}), "NAME": config["NAME"]}
    connections.settings[alias] = config


def release_connection(alias):
    if alias != "default" and alias in connections.settings:
        connections[alias].close()


@contextlib.contextmanager
def use_tenant(tenant):
    """Route tenant-side models to this tenant's database for the duration of the block."""
    alias = alias_for(tenant)
    try:
        with use_database(alias):
            yield alias
    finally:
        release_connection(alias)
