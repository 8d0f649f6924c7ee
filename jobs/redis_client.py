"""The process's one Redis client: every push, every sweep and /health share it (and its connection pool).

django-rq builds a new client, with a new pool, on every get_queue(): each push would open a TCP connection
of its own (and redis-py 8 reads its own package metadata for every new connection). redis-py's pool is
thread-safe and starts afresh in a forked child (an RQ work-horse).
"""

import functools

import django_rq

# django-rq configures Redis per queue (settings.RQ_QUEUES): the project's one queue names its Redis.
QUEUE_NAME = "default"


@functools.cache
def connection():
    """Return the process's Redis client, made on first use."""
    return django_rq.get_connection(QUEUE_NAME)
