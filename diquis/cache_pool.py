"""One Redis connection pool per process for Django's cache (the throttles' counters), however many cache objects.

Django keeps its cache objects per context (CacheHandler is an asgiref Local), and under ASGI every request runs in
a context of its own, so every request made a new RedisCache, a new client and a new connection pool: each
throttled request opened a TCP connection to Redis of its own (and redis-py 8 reads its package metadata for every
new connection), on the request's path, while it held one of the web process's database sessions. Django's
RedisCache takes its pool class from OPTIONS["pool_class"]: this one hands every cache object of the process the
same pool for the same URL and options. redis-py's pool is thread-safe and starts afresh in a forked child.
"""

import threading

import redis


class ProcessConnectionPool(redis.ConnectionPool):
    _pools = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url, **options):
        key = (url, tuple(sorted((name, repr(value)) for name, value in options.items())))
        with cls._lock:
            if key not in cls._pools:
                cls._pools[key] = super().from_url(url, **options)
            return cls._pools[key]
