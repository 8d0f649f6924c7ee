"""The bench settings with channels_redis left at its stock configuration (only the key prefix kept,
so the bench can clean up): no socket_timeout, redis-py's default pool, capacity 100, expiry 60."""

import os

from bench.settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ["CHANNEL_LAYER_PREFIX"]},  # noqa: F405
    }
}
