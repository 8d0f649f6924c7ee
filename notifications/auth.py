"""Who is on the other end of a websocket: a simplejwt access token (query string or `bearer` subprotocol)
or the Django session of a signed-in staff user. Also the Origin check for browsers."""

import time
from importlib import import_module
from urllib.parse import urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.contrib import auth
from django.http.request import split_domain_port, validate_host
from django.utils.module_loading import import_string
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as simplejwt_settings

from .framing import REVOKED
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


def _token_refusals(tokens):
    """The project's own check of valid tokens (NOTIFICATIONS_TOKEN_CHECK, given a list): for each, None while
    it stands, else the close code."""
    check = getattr(settings, "NOTIFICATIONS_TOKEN_CHECK", None)
    return import_string(check)(tokens) if check else [None] * len(tokens)


def refusals(principals):
    """For each principal, None while its socket may stay open, else the close code. The tokens are checked
    together (the check of every socket of a process, notifications.recheck); a session, each by Django's own
    rule (its session and its hash). Reads the database: run it in a thread."""
    checked = iter(_token_refusals([principal.token for principal in principals if principal.token is not None]))
    return [next(checked) if principal.token is not None else principal.session_refusal() for principal in principals]


class Principal:
    """The socket's identity: a user id, when it must end at the latest, and what to check again while
    it stays open (the access token, or the session's key)."""

    def __init__(self, user_id, expires_at=None, via_subprotocol=False, *, token=None, session_key=None):
        self.user_id = str(user_id)
        self.expires_at = expires_at
        self.via_subprotocol = via_subprotocol
        self.token = token
        self.session_key = session_key

    def session_refusal(self):
        user = auth.get_user(_SessionOnly(self.session_key))
        return None if _is_hub_staff(user) and str(user.pk) == self.user_id else REVOKED


class _SessionOnly:
    """What django.contrib.auth.get_user reads of a request: its session, loaded afresh."""

    def __init__(self, session_key):
        self.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def _is_hub_staff(user):
    return user is not None and user.is_authenticated and user.is_active and user.is_staff


def principal_for_token(raw, via_subprotocol=False):
    """The Principal of a raw access token, or None. Shared by the websocket and SignalR's negotiate."""
    try:
        # Signature, expiry and token type, by simplejwt itself, with the project's access token class.
        token = simplejwt_settings.AUTH_TOKEN_CLASSES[0](raw)
    except TokenError:
        return None
    if _token_refusals([token])[0] is not None:
        return None
    return Principal(token[simplejwt_settings.USER_ID_CLAIM], token["exp"], via_subprotocol, token=token)


def principal_for_session(scope):
    """The Principal of a signed-in staff user's session, or None. Its socket ends after
    NOTIFICATIONS_SESSION_SOCKET_MAX_AGE at the latest (the session itself is checked again meanwhile)."""
    user, session = scope.get("user"), scope.get("session")
    if not _is_hub_staff(user) or session is None or not session.session_key:
        return None
    expires_at = time.time() + settings.NOTIFICATIONS_SESSION_SOCKET_MAX_AGE
    return Principal(user.pk, expires_at, session_key=session.session_key)


class TokenOrSessionMiddleware:
    """Sets scope["principal"] (or leaves it None: the consumer then refuses the socket). A socket with a token
    goes on at once; one without goes through Channels' cookie, session and auth middleware first, for the
    session. Each layer a socket goes through stays on its stack for as long as it is open (a coroutine and
    a copy of the scope each), so a token's socket, the common one, carries none of the session's."""

    def __init__(self, inner):
        self.inner = inner
        self.with_session = AuthMiddlewareStack(_SessionPrincipal(inner))

    async def __call__(self, scope, receive, send):
        raw, via_subprotocol = token_from_scope(scope)
        if not raw:
            return await self.with_session(scope, receive, send)
        principal = await database_sync_to_async(principal_for_token)(raw, via_subprotocol)
        return await self.inner({**scope, "principal": principal}, receive, send)


class _SessionPrincipal:
    """Inside Channels' AuthMiddlewareStack: the principal of the scope's session."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        return await self.inner({**scope, "principal": principal_for_session(scope)}, receive, send)


class SameOriginValidator(OriginValidator):
    """Browsers always send Origin. It must be the origin the socket was opened on (the scheme, host and
    port of the handshake itself, its host an allowed one), or one of CSRF_TRUSTED_ORIGINS and
    CORS_ALLOWED_ORIGINS, scheme and port included. Non-browser clients (SignalR's .NET/Python clients,
    scripts) send none and are judged by their token alone."""

    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope, receive, send):
        """OriginValidator's match, against this socket's own origins (no validator of its own per socket)."""
        origin = header_value(scope, b"origin")
        if origin is None or self.one_of(urlparse(origin), [*trusted_origins(), *own_origin(scope)]):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    def one_of(self, parsed_origin, origins):
        return any(origin == "*" or self.match_allowed_origin(parsed_origin, origin) for origin in origins)


def trusted_origins():
    """CSRF_TRUSTED_ORIGINS (Django's `https://*.example.com` is channels' `https://.example.com`) and the
    CORS origins, exact."""
    csrf = [origin.replace("://*.", "://.", 1) for origin in settings.CSRF_TRUSTED_ORIGINS]
    return [*csrf, *getattr(settings, "CORS_ALLOWED_ORIGINS", [])]


def own_origin(scope):
    """[the handshake's own origin], or [] when its Host is missing or not an allowed host. Behind a TLS
    proxy, SECURE_PROXY_SSL_HEADER says the scheme, as it does for Django's requests."""
    host = header_value(scope, b"host")
    domain, _port = split_domain_port(host or "")
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return []
    secure = scope.get("scheme") == "wss"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        wire_name = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        secure = (header_value(scope, wire_name) or "").split(",")[0].strip() == value
    return [f"{'https' if secure else 'http'}://{host.lower()}"]


def websocket_stack(app):
    return SameOriginValidator(TokenOrSessionMiddleware(app))
