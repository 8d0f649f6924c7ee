"""SignalR's JSON hub protocol on /hubs/notifications, for Microsoft's SignalR clients (API.md, "SignalR clients").

Written from the public specs (dotnet/aspnetcore, src/SignalR/docs/specs/HubProtocol.md and
TransportProtocols.md). Only what a server-to-client notification hub needs: the negotiate answer, the
handshake, invocations for notifications, pings, close messages, and an error completion for any method
a client tries to call (this hub has none).

Which framing a socket gets (decided once, before anything is sent):
- a socket that carries a negotiated connection token (`?id=`) speaks SignalR; one that sends no
  handshake within SIGNALR_HANDSHAKE_TIMEOUT is closed;
- a client that announces itself as Microsoft's SignalR client (User-Agent or X-SignalR-User-Agent
  "Microsoft SignalR/...", sent by the .NET, Java and Node clients) may skip negotiation: it is waited
  for in the same way;
- a browser (it sends Origin) that did not negotiate may still be a SignalR client with
  `skipNegotiation`: it gets NOTIFICATIONS_HANDSHAKE_WAIT seconds to send the handshake, and is taken
  as a plain client after that (or at once, if its first message is not a handshake);
- everything else (scripts, the `bearer` subprotocol, the admin's session) gets API.md's plain frames at
  once, so plain clients see `Connected` without delay.
"""

import json
import uuid
from typing import NamedTuple

from django.conf import settings
from django.core import signing

from .framing import CLIENT_CLOSED, CONNECTED_MESSAGE, INVALID_MESSAGE, Reply, compact_json
from .scope import header_value, query_value

RECORD_SEPARATOR = "\x1e"
PROTOCOL = "json"
PROTOCOL_VERSION = 1
NEGOTIATE_VERSION = 1

# Message types of HubProtocol.md.
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL_INVOCATION, PING, CLOSE = range(1, 8)

# A client's partial record is kept until its separator arrives; beyond this it is not a hub message.
MAX_PENDING = 64 * 1024

CONNECTION_SALT = "notifications.signalr.connection"
# The connection token only marks a socket as negotiated (the socket still needs a valid access token),
# so it may outlive one connection: clients that reconnect with the same URL are not refused.
CONNECTION_TOKEN_MAX_AGE = 24 * 3600

SIGNALR_USER_AGENT = "microsoft signalr/"


def record(message):
    """One message of the JSON hub protocol: a JSON object ended by the record separator."""
    return compact_json(message) + RECORD_SEPARATOR


# --- negotiation and connection tokens --------------------------------------------------------------


def open_connection(user_id):
    """A new connection id and its token: signed, bound to the user, so nobody else can use it."""
    connection_id = str(uuid.uuid4())
    token = signing.dumps({"user": str(user_id), "connection": connection_id}, salt=CONNECTION_SALT)
    return connection_id, token


def connection_of(token, user_id):
    """The connection id of a token issued to this user, or None (forged, too old, someone else's)."""
    try:
        data = signing.loads(token, salt=CONNECTION_SALT, max_age=CONNECTION_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("user") != str(user_id):
        return None
    return data.get("connection")


def negotiation(user_id, requested_version):
    """The body of a negotiate answer (TransportProtocols.md). Version 0 clients use `connectionId` as
    the `id` of their socket, so it carries the token; version 1 clients get both."""
    connection_id, token = open_connection(user_id)
    transports = [{"transport": "WebSockets", "transferFormats": ["Text"]}]
    if min(requested_version, NEGOTIATE_VERSION) >= 1:
        return {
            "connectionId": connection_id,
            "connectionToken": token,
            "negotiateVersion": NEGOTIATE_VERSION,
            "availableTransports": transports,
        }
    return {"connectionId": token, "negotiateVersion": 0, "availableTransports": transports}


# --- which framing a socket gets -----------------------------------------------------------------------


class Expectation(NamedTuple):
    """How long a new socket is given to send SignalR's handshake, and what it becomes without one:
    a plain client (`or_plain`) or a closed socket."""

    wait: float
    or_plain: bool


PLAIN_AT_ONCE = Expectation(0, True)


def announces_signalr(scope):
    agents = (header_value(scope, b"user-agent"), header_value(scope, b"x-signalr-user-agent"))
    return any(agent and agent.lower().startswith(SIGNALR_USER_AGENT) for agent in agents)


def expectation(scope, principal):
    """See the module's docstring. None: the socket carries a connection token that is not its user's."""
    token = query_value(scope, "id")
    handshake_timeout = float(settings.SIGNALR_HANDSHAKE_TIMEOUT)
    if token is not None:
        if connection_of(token, principal.user_id) is None:
            return None
        return Expectation(handshake_timeout, or_plain=False)
    if principal.via_subprotocol or principal.expires_at is None:  # `bearer` subprotocol, or a staff session
        return PLAIN_AT_ONCE
    if announces_signalr(scope):
        return Expectation(handshake_timeout, or_plain=False)
    if header_value(scope, b"origin") is not None:
        return Expectation(float(settings.NOTIFICATIONS_HANDSHAKE_WAIT), or_plain=True)
    return PLAIN_AT_ONCE


# --- the handshake -----------------------------------------------------------------------------------


def split_handshake(text):
    """(request, rest) when `text` opens with a handshake request record; (None, text) otherwise."""
    head, separator, rest = text.partition(RECORD_SEPARATOR)
    if not separator:
        return None, text
    try:
        request = json.loads(head)
    except ValueError:
        return None, text
    if not isinstance(request, dict) or "protocol" not in request:
        return None, text
    return request, rest


def handshake_error(request):
    """None when the server speaks the requested protocol and version; else the error line to answer."""
    protocol, version = request.get("protocol"), request.get("version")
    if protocol != PROTOCOL:
        return f"Requested protocol '{protocol}' is not available."
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        return f"The server does not support version {version} of the '{PROTOCOL}' protocol."
    return None


def handshake_response(error=None):
    return record({"error": error} if error else {})


# --- the framing of a SignalR socket -------------------------------------------------------------------


class SignalRFraming:
    """Notifications as invocations (`target` = the event, `arguments` = [its data]); pings both ways;
    a close message before the server closes."""

    keeps_alive = True

    def __init__(self):
        self.pending = ""

    def connected(self):
        return self.invocation("Connected", CONNECTED_MESSAGE)

    def notification(self, frame):
        return self.invocation(frame["event"], frame["data"])

    @staticmethod
    def invocation(target, argument):
        return record({"type": INVOCATION, "target": target, "arguments": [argument]})

    @staticmethod
    def ping():
        return record({"type": PING})

    def goodbye(self, goodbye):
        if not goodbye.tell:
            return None
        message = {"type": CLOSE}
        if goodbye.error:
            message["error"] = goodbye.error
        message["allowReconnect"] = goodbye.allow_reconnect
        return record(message)

    def receive(self, text):
        """Answers every complete record of `text`; a record that is not a hub message ends the socket."""
        records = (self.pending + text).split(RECORD_SEPARATOR)
        self.pending = records.pop()
        if len(self.pending) > MAX_PENDING:
            return Reply(goodbye=INVALID_MESSAGE)
        frames = []
        for raw in records:
            try:
                message = json.loads(raw)
            except ValueError:
                return Reply(tuple(frames), INVALID_MESSAGE)
            if not isinstance(message, dict) or type(message.get("type")) is not int:
                return Reply(tuple(frames), INVALID_MESSAGE)
            answer = self.answer(message)
            if answer is CLIENT_CLOSED:
                return Reply(tuple(frames), CLIENT_CLOSED)
            if answer:
                frames.append(answer)
        return Reply(tuple(frames))

    def answer(self, message):
        kind = message["type"]
        if kind in (INVOCATION, STREAM_INVOCATION):
            invocation_id = message.get("invocationId")
            if invocation_id is None:  # non-blocking: the spec forbids any response
                return None
            return record(
                {
                    "type": COMPLETION,
                    "invocationId": str(invocation_id),
                    "error": f"Unknown hub method '{message.get('target')}'",
                }
            )
        if kind == PING:
            return self.ping()
        if kind == CLOSE:
            return CLIENT_CLOSED
        # Stream items, completions, cancellations, acks: this hub asked for none of them.
        return None
