"""The request in progress, for log lines: its id, and the user and tenant it is for once they are known.

The id is made where the connection enters the application (the ASGI middleware below, for HTTP requests and
websockets alike), so every line logged while it is served carries it, Django's own `django.request` warnings
included (they are written after the middleware chain has returned). A well-formed `X-Request-ID` sent by a
proxy in front is kept, so its logs and ours share the id; any other value is replaced. The HTTP response carries
the id back in the same header.

Neither the tenant nor the user is copied here: TenantMiddleware sets `request.tenant` and DRF's authentication
`request.user` (the user of a bearer token is known only inside the view), so the context keeps the request and
reads them when a line is written. Reading them costs no query: a user Django has not loaded yet is left out. A
websocket's user is the one its authentication found (SocketUserMiddleware, inside notifications.auth's stack).
"""

import contextlib
import re
import uuid
from contextvars import ContextVar

from channels.middleware import BaseMiddleware
from django.utils.functional import LazyObject, empty

from jobs.context import bound, current_request_id
from notifications.scope import header_value

REQUEST_ID_HEADER = "X-Request-ID"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestContext:
    def __init__(self, request_id):
        self.request_id = request_id
        self.request = None  # the Django request, once the middleware chain has it
        self.socket_user_id = None  # a websocket's user, once its authentication has found one

    def log_fields(self):
        """The request's id, and its user's id and tenant where they are known."""
        return {
            "request_id": self.request_id,
            "user_id": self.socket_user_id or _user_id(self.request),
            "tenant": _tenant_id(self.request),
        }


current_request: ContextVar[RequestContext | None] = ContextVar("diquis_current_request", default=None)


def request_id_from(sent):
    """The id `sent` by the client or a proxy when well-formed (nothing a log line could be forged with), else a
    new one."""
    if sent and _WELL_FORMED_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


@contextlib.contextmanager
def serving(request_id):
    """The block serves the request `request_id`: its context for log lines, its id for the jobs it enqueues."""
    with bound(current_request_id, request_id), bound(current_request, RequestContext(request_id)) as context:
        yield context


def request_log_fields():
    context = current_request.get()
    return context.log_fields() if context is not None else {}


def _user_id(request):
    user = getattr(request, "__dict__", {}).get("user")  # DRF's authenticated user, or Django's lazy one
    if isinstance(user, LazyObject):
        user = None if user._wrapped is empty else user._wrapped
    return str(user.pk) if user is not None and user.is_authenticated else None


def _tenant_id(request):
    tenant = getattr(request, "tenant", None)
    return tenant.pk if tenant is not None else None


class RequestContextMiddleware(BaseMiddleware):
    """ASGI: a RequestContext for each HTTP request and websocket, for as long as it is served."""

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.inner(scope, receive, send)
        sent = header_value(scope, REQUEST_ID_HEADER.lower().encode())
        with serving(request_id_from(sent)):
            return await self.inner(scope, receive, send)  # unchanged: no copy of the scope


class SocketUserMiddleware(BaseMiddleware):
    """ASGI, inside a websocket's authentication (notifications.auth): names the socket's user in its context."""

    async def __call__(self, scope, receive, send):
        context, principal = current_request.get(), scope.get("principal")
        if context is not None and principal is not None:
            context.socket_user_id = principal.user_id
        return await self.inner(scope, receive, send)  # unchanged: no copy of the scope


class RequestIdMiddleware:
    """Django: hands the request to its RequestContext and answers with the request's id. Without the ASGI
    middleware (Django's test client) it makes the context itself, for the middleware chain."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = current_request.get()
        if context is not None:
            return self._respond(context, request)
        with serving(request_id_from(request.headers.get(REQUEST_ID_HEADER))) as made:
            return self._respond(made, request)

    def _respond(self, context, request):
        context.request = request
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = context.request_id
        return response
