"""How many sockets each user has open, across every server process: a sorted set per user in Redis, its
members the sockets' channel names, each scored with when it lapses unless its socket renews it. A server
that dies takes its sockets with it and their entries lapse by themselves, so no count drifts."""

import asyncio
import logging
import time
import weakref

from django.conf import settings
from redis import asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Renewals sent in one pipeline.
RENEW_BATCH = 500
# redis-py's asyncio client belongs to the event loop it was made in (Daphne has one; tests make several).
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def _client():
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return _clients[loop]


def _key(user_id):
    return f"{settings.NOTIFICATIONS_PRESENCE_PREFIX}:{user_id}"


async def join(user_id, channel_name, *, limit, lease):
    """Count this socket in, unless the user has `limit` open already: True if it may stay. Redis down
    (the channel layer is then down too) lets it in, and says so in the log."""
    key, now = _key(user_id), time.time()
    try:
        async with _client().pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {channel_name: now + lease})
            pipe.zcard(key)
            pipe.expire(key, int(lease) + 1)
            _, _, count, _ = await pipe.execute()
        if count <= limit:
            return True
        await _client().zrem(key, channel_name)
        return False
    except RedisError as error:
        logger.warning("socket count skipped: Redis unavailable (%s)", type(error).__name__)
        return True


async def renew(sockets, *, lease):
    """Renew the places of these (user id, channel name) sockets, in one round trip per RENEW_BATCH."""
    lapses = time.time() + lease
    try:
        for start in range(0, len(sockets), RENEW_BATCH):
            async with _client().pipeline(transaction=False) as pipe:
                for user_id, channel_name in sockets[start : start + RENEW_BATCH]:
                    pipe.zadd(_key(user_id), {channel_name: lapses}, xx=True)
                    pipe.expire(_key(user_id), int(lease) + 1)
                await pipe.execute()
    except RedisError:
        pass  # they lapse, and these sockets count for less until Redis is back: never more


async def leave(user_id, channel_name):
    try:
        await _client().zrem(_key(user_id), channel_name)
    except RedisError:
        pass  # it lapses
