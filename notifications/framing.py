"""How the hub's messages look on the wire, apart from who receives them.

The consumer decides who gets what (groups, replay, de-duplication); a framing only turns its events into
text: API.md's plain JSON frames here, SignalR's JSON hub protocol in `signalr.py`. Both have the same
small interface, so one consumer serves both kinds of client.
"""

import json
from typing import NamedTuple

CONNECTED_MESSAGE = "Successfully connected to notification hub"


def compact_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Goodbye(NamedTuple):
    """Why the server ends a socket: the websocket close code, and what a SignalR client is told first
    (an error line, and whether its automatic reconnect should try again). `tell` is False when the
    client itself asked to close."""

    code: int
    error: str | None
    allow_reconnect: bool
    tell: bool = True


# A server may only close with 1000 or an application code (3000-4999; Daphne's websocket library enforces
# it), so "going away" and "protocol error" get 4xxx codes named after their HTTP cousins.
# Why a socket is refused or closed once open (API.md, "WebSocket"), as a token check says it
# (NOTIFICATIONS_TOKEN_CHECK) and a revocation asks for it (services.close_sockets).
REVOKED = 4401  # the token or session no longer stands: expired, signed out, a new password, the user inactive
FORBIDDEN = 4403  # the user may no longer use the hub (e.g. their tenant was deactivated)
# The check cannot be made now (the database the user lives in does not answer): a handshake is refused, an
# open socket stays (its token stood at the last check; a revocation still closes it at once) until a check can be made.
UNAVAILABLE = 4503

TOKEN_EXPIRED = Goodbye(REVOKED, "Token expired.", allow_reconnect=False)
SIGNED_OUT = Goodbye(REVOKED, "Not authorized: the token or session was revoked.", allow_reconnect=False)
TENANT_FORBIDDEN = Goodbye(FORBIDDEN, "Forbidden: the tenant is not usable.", allow_reconnect=False)
SHUTTING_DOWN = Goodbye(4503, None, allow_reconnect=True)
CLIENT_TIMEOUT = Goodbye(4408, "Client timeout elapsed without a message from the client.", allow_reconnect=True)
INVALID_MESSAGE = Goodbye(4400, "Invalid message.", allow_reconnect=False)
HANDSHAKE_FAILED = Goodbye(4400, None, allow_reconnect=False, tell=False)  # the handshake answer said why
CLIENT_CLOSED = Goodbye(1000, None, allow_reconnect=False, tell=False)


def refused(code):
    """The goodbye of an open socket whose token or session a check or a revocation refused (`code`)."""
    return TENANT_FORBIDDEN if code == FORBIDDEN else SIGNED_OUT


class Reply(NamedTuple):
    """What the server answers to one client message: frames to send, then perhaps a goodbye."""

    frames: tuple = ()
    goodbye: Goodbye | None = None


class PlainFraming:
    """API.md's frames: one JSON object {"id", "event", "data"} per websocket message. Clients have
    nothing to say on this hub, and a close code alone tells why a socket ended."""

    keeps_alive = False

    def connected(self):
        return compact_json({"id": None, "event": "Connected", "data": {"message": CONNECTED_MESSAGE}})

    def notification(self, frame):
        return compact_json(frame)

    def goodbye(self, goodbye):
        return None

    def receive(self, text):
        return Reply()
