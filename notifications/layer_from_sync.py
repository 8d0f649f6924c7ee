"""group_send from synchronous code (jobs in the worker, views) through one event loop kept per process.

`async_to_sync(layer.group_send)` runs each call in a new event loop, and channels_redis keeps its Redis
connections per loop: every notification opened a new connection, most of the cost of a push, and a job
may send several. Neither asgiref nor channels keeps a loop for sync callers, hence this small bridge.
A forked child (an RQ work-horse) starts a loop of its own: threads do not survive fork.
"""

import asyncio
import os
import threading

from channels.layers import get_channel_layer

# A push that Redis does not answer within this bound is given up (the notification row is stored; the
# client replays it with ?since=), so that a job never hangs on it.
SEND_TIMEOUT = 10

_lock = threading.Lock()
_loop = {"pid": None, "loop": None}


def _process_loop():
    with _lock:
        if _loop["pid"] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="diquis-channel-layer", daemon=True).start()
            _loop.update(pid=os.getpid(), loop=loop)
        return _loop["loop"]


def group_send(group, message):
    """`channel_layer.group_send(group, message)`, waited for; raises what it raises, or TimeoutError."""
    future = asyncio.run_coroutine_threadsafe(get_channel_layer().group_send(group, message), _process_loop())
    try:
        return future.result(timeout=SEND_TIMEOUT)
    except TimeoutError:
        future.cancel()
        raise
