"""One job per subject at a time, across every worker process.

On PostgreSQL: a session-level advisory lock on the main database, keyed by the subject; it is released
when the job ends or, if the worker dies, when its connection does (the server ends the session of a
killed process at once, so a lock never outlives the process that held it). SQLite (the embedded default)
has one writer at a time anyway and runs one worker, so there the lock is a no-op.

The lock belongs to the database session, not to the Python code: whoever closes the connection (on
purpose or because the server dropped it) has released it.
"""

import contextlib
import time

from django.conf import settings
from django.db import connections

POLL_SECONDS = 0.2


class SubjectBusy(Exception):
    pass


def _try_lock(cursor, subject):
    cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [subject])
    return cursor.fetchone()[0]


def _unlock(connection, subject):
    if connection.connection is not None:  # a dropped connection has released the lock already
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [subject])


@contextlib.contextmanager
def holding(subject, *, wait, using="default"):
    """Try to take the subject's lock for up to `wait` seconds; yields whether it is held.

    A caller that gets False decides what to do (hand the work back, skip it) instead of failing.
    """
    connection = connections[using]
    if not subject or connection.vendor != "postgresql":
        yield True
        return
    deadline = time.monotonic() + wait
    with connection.cursor() as cursor:
        while not (held := _try_lock(cursor, subject)) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    if not held:
        yield False
        return
    try:
        yield True
    finally:
        _unlock(connection, subject)


@contextlib.contextmanager
def subject_lock(subject, *, using="default"):
    """Hold the subject's lock, waiting up to DIQUIS_SUBJECT_LOCK_WAIT for it; SubjectBusy after that."""
    with holding(subject, wait=settings.DIQUIS_SUBJECT_LOCK_WAIT, using=using) as held:
        if not held:
            raise SubjectBusy(f"another job holds {subject}")
        yield
