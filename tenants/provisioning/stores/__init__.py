"""Where whole tenant databases live: one `DatabaseStore` interface (base.py), one module per kind."""

from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from ...connections import server_alias
from ...models import MAIN_SERVER
from .base import DatabaseStore
from .postgresql import PostgreSQLStore
from .sqlite import SQLiteStore

__all__ = ["DatabaseStore", "PostgreSQLStore", "SQLiteStore", "main_store", "store_for"]


def main_store() -> DatabaseStore:
    """The store beside the main database: its PostgreSQL server, or the SQLite folder of the embedded default
    (or what settings.DIQUIS_TENANT_DATABASE_STORE names)."""
    if settings.DIQUIS_TENANT_DATABASE_STORE:
        return import_string(settings.DIQUIS_TENANT_DATABASE_STORE)()
    if connections["default"].vendor == "sqlite":
        return SQLiteStore(settings.DIQUIS_TENANT_SQLITE_DIR)
    return PostgreSQLStore("default")


def store_for(server_name) -> DatabaseStore:
    """The store of a database server of the catalog (`main`: main_store())."""
    if server_name in (None, MAIN_SERVER):
        return main_store()
    return PostgreSQLStore(server_alias(server_name), server=server_name)
