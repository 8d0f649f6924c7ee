"""The notification hub: one consumer for every client of /hubs/notifications.

Who receives what (the user's own group, `?since=` replay, de-duplication, expiry) is decided here once;
how it looks on the wire is the socket's framing: API.md's plain frames or SignalR's hub protocol
(`framing.py`, `signalr.py`; `signalr.py` says how a socket's framing is chosen).
"""

import asyncio
import contextlib
import logging
import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from opentelemetry import propagate
from opentelemetry.trace import SpanKind

from . import presence, signalr
from .auth import BEARER
from .framing import (
    CLIENT_TIMEOUT,
    HANDSHAKE_FAILED,
    SHUTTING_DOWN,
    TOKEN_EXPIRED,
    PlainFraming,
    refused,
)
from .groups import user_group
from .recheck import lease, recheck
from .scope import query_value
from .selectors import latest_notification_id, notifications_after
from .services import frame_attributes, tracer

logger = logging.getLogger(__name__)

REFUSED = 4401
REPLAY_BATCH = 500
REPLAY_TRUNCATED = "ReplayTruncated"
# How long a stopping server spends on one socket's goodbye and group cleanup.
SHUTDOWN_GRACE = 2.0


def _since(scope):
    value = query_value(scope, "since")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class NotificationConsumer(AsyncWebsocketConsumer):
    """Joins the caller's own group, replays what they missed (`?since=`), then forwards live notifications.

    A socket sends a user's persisted notifications in increasing id order, each once: `last_id` is the newest
    id it has sent or was told the client has (`?since=`; without it, the user's newest when the socket opened),
    and a push at or below it is dropped. That covers a
    notification pushed while the replay runs (it reaches the socket from the database and from the group) and
    a push that arrives after a later one (two workers' pushes race; ids are in commit order per user,
    notifications.services, so the later one's replay brought it already).
    Channels is at-most-once: a push lost while the socket stays open (Redis stopped or frozen a moment)
    would leave a hole before the ids that follow, which no `?since=` the client may send could fill. Each
    push names the user's previous notification; a socket that has not sent that one replays the hole from
    the database first. The `delivering` lock keeps a live push from overtaking the replay when the framing is
    chosen by a timer (outside the consumer's own message loop).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.principal = self.framing = None
        self.joined = False
        self.closing = False
        self.timers = []
        self.tasks = set()
        self.last_id = None
        self.delivering = asyncio.Lock()
        self.last_received = self.last_sent = time.monotonic()

    async def connect(self):
        self.principal = self.scope.get("principal")
        self.expectation = signalr.expectation(self.scope, self.principal) if self.principal else None
        if self.expectation is None or not await self.counted_in():
            self.closing = True
            await self.close(code=REFUSED)  # before accept: the handshake is refused (HTTP 403)
            return
        self.group = user_group(self.principal.user_id)
        await self.accept(BEARER if self.principal.via_subprotocol else None)
        if self.expectation.wait <= 0:
            await self.start(PlainFraming())
        else:
            self.later(self.expectation.wait, self.handshake_missing)

    # --- choosing the framing --------------------------------------------------------------------------

    async def handshake_missing(self):
        if self.framing is not None or self.closing:
            return
        if self.expectation.or_plain:
            await self.start(PlainFraming())
        else:
            await self.end(HANDSHAKE_FAILED)

    async def first_message(self, text):
        request, rest = signalr.split_handshake(text)
        if request is None:
            if self.expectation.or_plain:
                await self.start(PlainFraming())  # not a SignalR client; what it said needs no answer
            else:
                await self.send_text(signalr.handshake_response("Handshake request expected."))
                await self.end(HANDSHAKE_FAILED)
            return
        error = signalr.handshake_error(request)
        await self.send_text(signalr.handshake_response(error))
        if error:
            await self.end(HANDSHAKE_FAILED)
            return
        framing = signalr.SignalRFraming()
        await self.start(framing)
        if rest:
            await self.answer(framing.receive(rest))

    async def start(self, framing):
        """The socket's life once its framing is known: group, Connected, replay, then live pushes."""
        self.framing = framing
        self.cancel_timers()
        async with self.delivering:
            if self.closing:
                return
            since = _since(self.scope)
            if since is None:  # read before joining: what commits after it reaches the socket, live or replayed
                self.last_id = await database_sync_to_async(self.latest_id)()
            self.joined = True  # before the await: a cancelled join is still left on disconnect
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.send_text(framing.connected())
            if since is not None:
                self.last_id = since
                await self.replay(since)
        if self.principal.expires_at:
            self.later(max(0.0, self.principal.expires_at - time.time()), lambda: self.end(TOKEN_EXPIRED))
        recheck().watch(self)
        if framing.keeps_alive:
            self.background(self.keep_alive())

    async def replay(self, since):
        """What the user missed, oldest first, up to NOTIFICATIONS_REPLAY_LIMIT; past it, one
        ReplayTruncated frame names the last id sent, for the client to list the rest over REST."""
        left = settings.NOTIFICATIONS_REPLAY_LIMIT
        while True:
            requested = min(REPLAY_BATCH, left + 1)  # one more than may be sent: is there more?
            batch = await database_sync_to_async(self.notifications_after)(since, requested)
            for frame in batch[:left]:
                await self.send_text(self.framing.notification(frame))
                since = self.last_id = frame["id"]
            if len(batch) > left:
                data = {"after": since, "message": "More notifications: GET /api/notifications?after=<after>."}
                await self.send_text(self.framing.notification({"id": None, "event": REPLAY_TRUNCATED, "data": data}))
                return
            if len(batch) < requested:
                return
            left -= len(batch)

    def latest_id(self):
        return latest_notification_id(user_id=self.principal.user_id)

    def notifications_after(self, after, limit):
        return [n.frame() for n in notifications_after(user_id=self.principal.user_id, after=after, limit=limit)]

    # --- while the socket stays open: is it still welcome? ---------------------------------------------

    async def counted_in(self):
        """The user's sockets are counted across servers; past NOTIFICATIONS_MAX_SOCKETS_PER_USER, no more."""
        limit = settings.NOTIFICATIONS_MAX_SOCKETS_PER_USER
        return await presence.join(self.principal.user_id, self.channel_name, limit=limit, lease=lease())

    async def sockets_close(self, message):
        """A revocation (sign-out, the tenant deactivated) closes the user's sockets at once."""
        await self.end(refused(message["code"]))

    # --- what flows ------------------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        self.last_received = time.monotonic()
        if self.closing:
            return
        text = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", errors="replace")
        if self.framing is None:
            await self.first_message(text)
        else:
            await self.answer(self.framing.receive(text))

    async def answer(self, reply):
        for frame in reply.frames:
            await self.send_text(frame)
        if reply.goodbye:
            await self.end(reply.goodbye)

    async def notification_push(self, message):
        frame = message["frame"]
        with tracer.start_as_current_span(
            "notification frame",
            context=propagate.extract(message),
            kind=SpanKind.CONSUMER,
            attributes=frame_attributes(frame),
        ):
            await self.deliver(message)

    async def deliver(self, message):
        frame = message["frame"]
        async with self.delivering:
            if self.closing:
                return
            if self.missed_before(message):
                await self.replay(self.last_id)
            if self.already_sent(frame):
                return
            await self.send_text(self.framing.notification(frame))
            if frame["id"] is not None:
                self.last_id = frame["id"]

    def already_sent(self, frame):
        """A persisted notification at or below the newest this socket has sent: replayed already, or it would
        come after a later one (never a lower id after a higher one on one socket)."""
        return frame["id"] is not None and self.last_id is not None and frame["id"] <= self.last_id

    def missed_before(self, message):
        """The push follows a notification this socket never sent (its push was lost)."""
        previous = message.get("previous")
        return self.last_id is not None and previous is not None and previous > self.last_id

    async def send_text(self, text):
        self.last_sent = time.monotonic()
        await self.send(text_data=text)

    async def keep_alive(self):
        """SignalR's keep-alive: a ping when the server has sent nothing for an interval; the socket ends
        when the client has sent nothing (its own pings included) for the client timeout."""
        interval = float(settings.SIGNALR_KEEP_ALIVE_INTERVAL)
        client_timeout = float(settings.SIGNALR_CLIENT_TIMEOUT)
        while not self.closing:
            now = time.monotonic()
            ping_due, silent_since = self.last_sent + interval, self.last_received + client_timeout
            if now >= silent_since:
                await self.end(CLIENT_TIMEOUT)
            elif now >= ping_due:
                await self.send_text(self.framing.ping())
            else:
                await asyncio.sleep(min(ping_due, silent_since) - now)

    # --- ending ----------------------------------------------------------------------------------------

    async def end(self, goodbye):
        """The server closes the socket, telling a SignalR client why first (its close message)."""
        if self.closing:
            return
        self.closing = True
        self.cancel_timers()
        text = self.framing.goodbye(goodbye) if self.framing else None
        if text:
            await self.send_text(text)
        await self.close(code=goodbye.code)

    async def disconnect(self, code):
        self.closing = True
        self.cancel_timers()
        recheck().forget(self)
        await self.leave_group()
        if self.principal is not None:
            await presence.leave(self.principal.user_id, self.channel_name)

    async def leave_group(self):
        async with self.delivering:
            if self.joined:
                self.joined = False
                await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message):
        """Channels' dispatch without its hop to the sync thread before every message: channels (4.2+)
        runs close_old_connections there first, and that one thread also runs Django's sync views and the
        sockets' token checks, so with thousands of sockets every push queued behind them (the fan-out's
        p99). This consumer reaches the database only through database_sync_to_async, which closes old
        connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send):
        """Daphne cancels every consumer when it stops: say goodbye (SignalR clients may reconnect, to
        another server or to this one once it is back) and leave the group on the way out."""
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.stopping(), SHUTDOWN_GRACE)
            raise

    async def stopping(self):
        await self.end(SHUTTING_DOWN)
        await self.leave_group()

    # --- timers ----------------------------------------------------------------------------------------

    def background(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def later(self, delay, coroutine_function):
        handle = asyncio.get_running_loop().call_later(delay, lambda: self.background(coroutine_function()))
        self.timers.append(handle)

    def cancel_timers(self):
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
