"""A call of the original web client that API.md keeps for compatibility ("Compatibility calls of the original
web client"): a refresh by GET. Same rules as its API.md counterpart; only the shape of the call differs. Its
/api/identity/* calls are tenants.identity_views'."""

from drf_spectacular.utils import extend_schema

from diquis.envelope import ok

from .throttles import TokenRefreshThrottle
from .tokens import refresh_tokens
from .views import TOKENS, AnonymousTokenEndpoint


class TokenRefreshByPathView(AnonymousTokenEndpoint):
    """GET /api/tokens/{refreshToken}: the original client's refresh; answers as POST /api/tokens/refresh."""

    throttle_classes = [TokenRefreshThrottle]

    @extend_schema(responses=TOKENS)
    def get(self, request, refresh_token):
        return ok(refresh_tokens(refresh_token))
