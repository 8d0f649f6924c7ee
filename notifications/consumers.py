"""The notification hub: one consumer for every client of /hubs/notifications."""

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from .auth import BEARER
from .groups import user_group
from .selectors import notifications_after

logger = logging.getLogger(__name__)

CONNECTED_MESSAGE = "Successfully connected to notification hub"
TOKEN_EXPIRED = 4401
REPLAY_BATCH = 500


def _since(scope):
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get("since")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


class NotificationConsumer(AsyncWebsocketConsumer):
    """Joins the caller's own group, replays what they missed (`?since=`), then forwards live notifications.

    A notification pushed while the replay runs reaches the socket twice (once from the database, once
    from the group); `replayed_ids` drops the second copy, so the client sees each id exactly once.
    """

    async def connect(self):
        self.principal = self.scope.get("principal")
        if self.principal is None:
            await self.close(code=TOKEN_EXPIRED)  # before accept: the handshake is refused (HTTP 403)
            return
        self.group = user_group(self.principal.user_id)
        self.replayed_ids = set()
        self.expiry_timer = None
        await self.accept(BEARER if self.principal.via_subprotocol else None)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_frame({"id": None, "event": "Connected", "data": {"message": CONNECTED_MESSAGE}})
        since = _since(self.scope)
        if since is not None:
            await self.replay(since)
        self.arm_expiry()

    async def replay(self, since):
        while True:
            batch = await database_sync_to_async(
                lambda after: [
                    n.frame()
                    for n in notifications_after(user_id=self.principal.user_id, after=after, limit=REPLAY_BATCH)
                ]
            )(since)
            for frame in batch:
                self.replayed_ids.add(frame["id"])
                await self.send_frame(frame)
            if len(batch) < REPLAY_BATCH:
                return
            since = batch[-1]["id"]

    def arm_expiry(self):
        if self.principal.expires_at:
            delay = max(0.0, self.principal.expires_at - time.time())
            self.expiry_timer = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.ensure_future(self.close(code=TOKEN_EXPIRED))
            )

    async def disconnect(self, code):
        if getattr(self, "expiry_timer", None):
            self.expiry_timer.cancel()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Clients have nothing to say on this hub; anything they send is ignored."""

    async def notification_push(self, message):
        frame = message["frame"]
        if frame["id"] is not None and frame["id"] in self.replayed_ids:
            self.replayed_ids.discard(frame["id"])
            return
        await self.send_frame(frame)

    async def send_frame(self, frame):
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))
