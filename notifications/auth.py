"""Who is on the other end of a websocket: a simplejwt access token (query string or `bearer` subprotocol)
or the Django session of a signed-in staff user. Also the Origin check for browsers."""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as simplejwt_settings

from .scope import header_value, query_value

BEARER = "bearer"


def token_from_scope(scope):
    """The raw access token of the handshake, and whether it came as the `bearer, <token>` subprotocol."""
    from_query = query_value(scope, "access_token")
    if from_query:
        return from_query, False
    protocols = scope.get("subprotocols") or []
    if len(protocols) >= 2 and protocols[0].lower() == BEARER:
        return protocols[1], True
    scheme, _, credentials = (header_value(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == BEARER and credentials:
        return credentials, False
    return None, False


def _token_usable(token):
    """The project's own extra check of a valid token (e.g. its tenant is still active)."""
    check = getattr(settings, "NOTIFICATIONS_TOKEN_CHECK", None)
    return import_string(check)(token) if check else True


class Principal:
    """The socket's identity: a user id and, for token sockets, when the token expires."""

    def __init__(self, user_id, expires_at=None, via_subprotocol=False):
        self.user_id = str(user_id)
        self.expires_at = expires_at
        self.via_subprotocol = via_subprotocol


def principal_for_token(raw, via_subprotocol=False):
    """The Principal of a raw access token, or None. Shared by the websocket and SignalR's negotiate."""
    try:
        # Signature, expiry and token type, by simplejwt itself, with the project's access token class.
        token = simplejwt_settings.AUTH_TOKEN_CLASSES[0](raw)
    except TokenError:
        return None
    if not _token_usable(token):
        return None
    return Principal(token[simplejwt_settings.USER_ID_CLAIM], token["exp"], via_subprotocol)


class TokenOrSessionMiddleware(BaseMiddleware):
    """Sets scope["principal"] (or leaves it None: the consumer then refuses the socket)."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)  # what this adds must not go upstream; BaseMiddleware copies only after
        scope["principal"] = await self.resolve(scope)
        return await super().__call__(scope, receive, send)

    async def resolve(self, scope):
        raw, via_subprotocol = token_from_scope(scope)
        if raw:
            return await database_sync_to_async(principal_for_token)(raw, via_subprotocol)
        user = scope.get("user")
        if user is not None and user.is_authenticated and user.is_active and user.is_staff:
            return Principal(user.pk)
        return None


class KnownOriginValidator(OriginValidator):
    """Browsers always send Origin: it must be an allowed host (or a CORS origin). Non-browser clients
    (SignalR's .NET/Python clients, scripts) send none and are judged by their token alone."""

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)


def allowed_origins():
    """Host patterns (any scheme and port, as Django's ALLOWED_HOSTS) plus the exact CORS origins."""
    return list(settings.ALLOWED_HOSTS) + list(getattr(settings, "CORS_ALLOWED_ORIGINS", []))


def websocket_stack(app):
    return KnownOriginValidator(AuthMiddlewareStack(TokenOrSessionMiddleware(app)), allowed_origins())
