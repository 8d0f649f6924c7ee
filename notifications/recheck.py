"""The re-check of a process's open sockets: every NOTIFICATIONS_RECHECK_INTERVAL, whether each socket's token
or session still stands (not signed out, the user active, the tenant usable), and each socket's place in its
user's count renewed (notifications.presence). A sign-out or a deactivation closes sockets at once
(services.close_sockets); this catches what that message missed, and what changed without one.

One task per event loop checks all of its sockets together, in one trip to the sync thread and a handful of
queries (tenants.tokens.token_refusals), and renews them in one Redis round trip. A check per socket was a trip
to the one thread that also runs Django's sync views, with three queries, every interval: 2,000 sockets kept
that thread busy most of the time, and each socket's standing task was more for the garbage collector to walk.
"""

import asyncio
import contextvars
import logging
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from . import presence
from .auth import refusals
from .framing import UNAVAILABLE, refused

logger = logging.getLogger(__name__)


def interval():
    return float(settings.NOTIFICATIONS_RECHECK_INTERVAL)


def lease():
    """How long a socket's place in the count holds without a renewal: a missed round or two do not drop it."""
    return 3 * interval()


class Recheck:
    """The sockets of one event loop (weakly held: a socket that ends without saying so is dropped too)."""

    def __init__(self):
        self.sockets = weakref.WeakSet()
        self.task = None

    def watch(self, socket):
        """`socket` has `principal`, `channel_name`, `closing` and `end(goodbye)` (the consumer)."""
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            # A context of its own: not the first socket's (its request id and user in the logs, its trace).
            self.task = asyncio.get_running_loop().create_task(self.run(), context=contextvars.Context())

    def forget(self, socket):
        self.sockets.discard(socket)

    async def run(self):
        while self.sockets:
            await asyncio.sleep(interval())
            try:
                await self.check(list(self.sockets))
            except Exception:  # one failed round must not end the re-checks; the next one tries again
                logger.exception("the re-check of %d open sockets failed", len(self.sockets))

    async def check(self, sockets):
        sockets = [socket for socket in sockets if not socket.closing]
        if not sockets:
            return
        try:
            found = await database_sync_to_async(refusals)([socket.principal for socket in sockets])
        except Exception as error:  # the main database does not answer: they stay, and are checked next round
            logger.warning("open sockets cannot be checked now (%s); they stay", type(error).__name__)
            found = [UNAVAILABLE] * len(sockets)
        unavailable = 0
        for socket, refusal in zip(sockets, found, strict=True):
            if refusal == UNAVAILABLE:
                unavailable += 1
            elif refusal is not None:
                await socket.end(refused(refusal))
        if unavailable:
            logger.info("%d open socket(s) cannot be checked now (their tenant's database); they stay", unavailable)
        staying = [(socket.principal.user_id, socket.channel_name) for socket in sockets if not socket.closing]
        await presence.renew(staying, lease=lease())


# One per event loop (Daphne has one; tests make several), as for the presence's Redis client.
_rechecks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Recheck]" = weakref.WeakKeyDictionary()


def recheck():
    """The running event loop's Recheck."""
    return _rechecks.setdefault(asyncio.get_running_loop(), Recheck())
