"""The one interface of the places whole tenant databases live in (a PostgreSQL server, SQLite files).

The provisioning steps, the template and the spares speak only these verbs, so they do not care which
kind of store they are given. Like Django's session backends, every kind implements all of them; each
is idempotent (a retried job never trips over what an earlier attempt did), and names reach the store's
own language only in a quoted or checked form.
"""

import contextlib
from typing import Protocol


class DatabaseStore(Protocol):
    #: What the store keeps databases in: "postgresql" or "sqlite".
    vendor: str
    #: The name of the DatabaseServer it is (`main` for the main database's).
    server: str

    def exists(self, name: str) -> bool:
        """Return whether a database of this name is there."""

    def list(self, prefix: str) -> list[str]:
        """Return the names of the databases starting with `prefix`, sorted."""

    def create(self, name: str) -> None:
        """Create an empty database; nothing happens if it exists."""

    def clone(self, name: str, template: str) -> None:
        """Create a database as a copy of `template`; nothing happens if it exists."""

    def rename(self, name: str, new_name: str) -> None:
        """Rename a database atomically (a spare handed to a tenant)."""

    def drop(self, name: str) -> None:
        """Remove a database and whatever is connected to it; nothing happens if it is gone."""

    def set_manifest(self, name: str, manifest: str) -> None:
        """Keep `manifest` (text) with the database, not copied into its clones (provisioning.template)."""

    def manifest(self, name: str) -> str | None:
        """Return what set_manifest kept with the database, or None."""

    def publish(self, building: str, final: str) -> None:
        """Turn a freshly migrated database into a template under its final name, atomically."""

    def exclusive(self, key: str) -> contextlib.AbstractContextManager:
        """Return a lock on `key` held by one process at a time wherever this store is shared."""
