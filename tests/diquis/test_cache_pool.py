"""Django's cache on one Redis connection pool per process (diquis.cache_pool).

Under ASGI each request runs in a context of its own, and Django keeps a cache object per context: without the
shared pool every request connected to Redis afresh. A fresh contextvars.Context is what such a request sees."""

import contextvars

from django.core.cache import caches


def _in_a_request_context(work):
    return contextvars.Context().run(work)


def _pool_used_by_a_cache_write():
    cache = caches["default"]
    cache.set("cache-pool-probe", "x", 5)
    return cache._cache._get_connection_pool(write=True)


def test_every_request_context_uses_the_same_pool_and_connection():
    first = _in_a_request_context(_pool_used_by_a_cache_write)
    connections = first._created_connections
    pools = [_in_a_request_context(_pool_used_by_a_cache_write) for _ in range(20)]
    assert {id(pool) for pool in pools} == {id(first)}
    assert first._created_connections == connections  # one after another: no new connection for any of them
    caches["default"].delete("cache-pool-probe")


def test_each_context_still_has_a_cache_object_of_its_own():
    """What Django keeps per context is untouched (its cache objects are not thread-safe to share); only the pool
    under them is the process's."""
    first = _in_a_request_context(lambda: caches["default"])
    second = _in_a_request_context(lambda: caches["default"])
    assert first is not second
