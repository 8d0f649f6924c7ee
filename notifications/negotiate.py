"""POST /hubs/notifications/negotiate: how a SignalR client starts (TransportProtocols.md, "negotiate").

Authenticated like the websocket, by an access token in `?access_token=` or an `Authorization: Bearer`
header; never by a cookie, so it needs no CSRF token. The answer is SignalR's, not the API envelope.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import signalr
from .auth import principal_for_token, token_from_scope


def principal_of(request):
    """The same rule as the websocket's, applied to the request's query string and Authorization header."""
    scope = {
        "query_string": request.META.get("QUERY_STRING", "").encode("latin1", errors="replace"),
        "headers": [(b"authorization", request.headers.get("Authorization", "").encode("latin1", errors="replace"))],
    }
    raw, _ = token_from_scope(scope)
    return principal_for_token(raw) if raw else None


@csrf_exempt
@require_POST
def negotiate(request):
    principal = principal_of(request)
    if principal is None:
        response = JsonResponse({"error": "Not Authorized"}, status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    try:
        requested = int(request.GET.get("negotiateVersion", "0"))
    except ValueError:
        requested = -1
    if requested < 0:
        return JsonResponse({"error": "negotiateVersion must be a non-negative integer."}, status=400)
    return JsonResponse(signalr.negotiation(principal.user_id, requested))
