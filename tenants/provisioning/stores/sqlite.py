"""Whole databases on the embedded SQLite default: each is a file in one folder.

A file appears under its final name only complete (written beside it, then renamed), so a crash never
leaves half a copy where a tenant or a template is expected.
"""

import contextlib
import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

from ...connections import sqlite_file
from ...models import MAIN_SERVER

# SQLite's companions of a database file (rollback journal, write-ahead log).
SIDECAR_SUFFIXES = ("-journal", "-wal", "-shm")


def glob_escape(text):
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


class SQLiteStore:
    vendor = "sqlite"
    server = MAIN_SERVER  # the embedded default has one server: the main database's folder

    def __init__(self, folder):
        self.folder = Path(folder)

    def __repr__(self):
        return f"SQLiteStore({str(self.folder)!r})"

    def _path(self, name):
        """The file of a database; a name that would leave the folder (or hide a NUL) is refused."""
        if not name or "\x00" in name or "/" in name or name.startswith(".."):
            raise ValueError(f"not a usable database name: {name!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        return sqlite_file(self.folder, name)

    def exists(self, name):
        return self._path(name).exists()

    def list(self, prefix):
        if not self.folder.is_dir():
            return []
        return sorted(p.name.removesuffix(".sqlite3") for p in self.folder.glob(f"{glob_escape(prefix)}*.sqlite3"))

    def create(self, name):
        self._write(name, lambda partial: sqlite3.connect(partial).close())

    def clone(self, name, template):
        self._write(name, lambda partial: shutil.copyfile(self._path(template), partial))

    def _write(self, name, make):
        path = self._path(name)
        if path.exists():
            return
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        make(partial)
        os.replace(partial, path)

    def rename(self, name, new_name):
        os.rename(self._path(name), self._path(new_name))

    def drop(self, name):
        path = self._path(name)
        for file in [path, *(path.with_name(path.name + suffix) for suffix in SIDECAR_SUFFIXES)]:
            file.unlink(missing_ok=True)

    def publish(self, building, final):
        os.replace(self._path(building), self._path(final))

    def set_manifest(self, name, manifest):
        """Nothing kept: a SQLite template is always built from scratch (its schema editor cannot compile a plan
        inside a transaction: provisioning.upgrades)."""

    def manifest(self, name):
        return None

    @contextlib.contextmanager
    def exclusive(self, key):
        """An exclusive lock on a file named after `key`: held by one process at a time on this machine."""
        lock_path = self._path(f".{key}").with_suffix(".lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
