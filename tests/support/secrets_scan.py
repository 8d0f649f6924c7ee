"""Look for a secret everywhere Redis keeps data, including RQ's zlib-compressed job payloads."""

import contextlib
import zlib


def _values(connection, key):
    kind = connection.type(key).decode()
    if kind == "string":
        yield connection.get(key)
    elif kind == "hash":
        for field, value in connection.hgetall(key).items():
            yield field
            yield value
    elif kind == "list":
        yield from connection.lrange(key, 0, -1)
    elif kind == "set":
        yield from connection.smembers(key)
    elif kind == "zset":
        yield from (member for member, _ in connection.zrange(key, 0, -1, withscores=True))
    elif kind == "stream":
        for _id, fields in connection.xrange(key):
            for field, value in fields.items():
                yield field
                yield value


def _expanded(value):
    yield value
    with contextlib.suppress(zlib.error, TypeError):
        yield zlib.decompress(value)


def redis_occurrences(connection, secret):
    """Keys of the connection's database whose name or data contains `secret`."""
    needle = secret.encode()
    found = []
    for key in connection.scan_iter(count=1000):
        if needle in key:
            found.append(key)
            continue
        for value in _values(connection, key):
            if value is not None and any(needle in chunk for chunk in _expanded(value)):
                found.append(key)
                break
    return found
