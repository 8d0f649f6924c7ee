"""DRF's authentication of the API: simplejwt's, for tokens that carry the tenant."""

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication

from .resolution import TENANT_CLAIM
from .selectors import get_tenant
from .tokens import is_revoked


class TenantJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication; the user is loaded from the request tenant's database, must belong to
    the tenant its token names, and must not have had its tokens revoked since this one was issued."""

    def authenticate(self, request):
        self.tenant = getattr(request._request, "tenant", None)  # TenantMiddleware's, already loaded
        # TenantMiddleware validated the bearer token already to resolve the tenant: decoding it again
        # would only repeat the signature check. Without one (no token, an invalid one, a path the
        # middleware leaves alone) simplejwt decides, and answers 401 where it must.
        token = getattr(request._request, "validated_token", None)
        if token is None:
            return super().authenticate(request)
        return self.get_user(token), token

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if user.tenant_id != validated_token.get(TENANT_CLAIM):
            raise exceptions.AuthenticationFailed("Token tenant does not match its user.")
        tenant = getattr(self, "tenant", None) or get_tenant(user.tenant_id)
        if tenant is None or is_revoked(validated_token, user=user, tenant=tenant):
            raise exceptions.AuthenticationFailed("Token revoked.")
        return user
