"""One job per subject at a time, across every worker process.

On PostgreSQL: a session-level advisory lock on the main database, keyed by the subject; it is released
when the job ends or, if the worker dies, when its connection does. SQLite (the embedded default) has one
writer at a time anyway and runs one worker, so there the lock is a no-op.
"""

import contextlib
import time

from django.conf import settings
from django.db import connections


class SubjectBusy(Exception):
    pass


@contextlib.contextmanager
def subject_lock(subject, *, using="default"):
    connection = connections[using]
    if not subject or connection.vendor != "postgresql":
        yield
        return
    deadline = time.monotonic() + settings.DIQUIS_SUBJECT_LOCK_WAIT
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [subject])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                raise SubjectBusy(f"another job holds {subject}")
            time.sleep(0.2)
    try:
        yield
    finally:
        if connection.connection is not None:  # a dropped connection has released the lock already
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [subject])
