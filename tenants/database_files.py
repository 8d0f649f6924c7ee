"""Whole databases on the embedded SQLite default: each is a file in settings.DIQUIS_TENANT_SQLITE_DIR.

The same verbs as tenants.database_server, so the provisioning steps do not care which one they use.
A file appears under its final name only complete (written beside it, then renamed), so a crash never
leaves half a copy where a tenant or a template is expected.
"""

import contextlib
import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

from django.conf import settings

from .databases import sqlite_path_for

# SQLite's companions of a database file (rollback journal, write-ahead log).
SIDECAR_SUFFIXES = ("-journal", "-wal", "-shm")


def _path(name):
    """The file of a database; a name that would leave the folder (or hide a NUL) is refused."""
    if not name or "\x00" in name or "/" in name or name.startswith(".."):
        raise ValueError(f"not a usable database name: {name!r}")
    path = Path(sqlite_path_for(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def exists(name):
    return _path(name).exists()


def names_starting_with(prefix):
    folder = Path(settings.DIQUIS_TENANT_SQLITE_DIR)
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".sqlite3") for p in folder.glob(f"{glob_escape(prefix)}*.sqlite3"))


def glob_escape(text):
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def create(name, *, template=None):
    """A new database file: a copy of `template`'s, or an empty one. Nothing happens if it exists."""
    path = _path(name)
    if path.exists():
        return
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    if template:
        shutil.copyfile(_path(template), partial)
    else:
        sqlite3.connect(partial).close()
    os.replace(partial, path)


def drop(name):
    path = _path(name)
    for file in [path, *(path.with_name(path.name + suffix) for suffix in SIDECAR_SUFFIXES)]:
        file.unlink(missing_ok=True)


def publish(building, final):
    os.replace(_path(building), _path(final))


@contextlib.contextmanager
def exclusive(key):
    """Held by one process at a time on this machine: an exclusive lock on a file named after `key`."""
    lock_path = _path(f".{key}").with_suffix(".lock")
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
