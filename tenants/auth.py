"""Authentication: JWTs that carry the tenant, and the login rule shared by the API and the admin."""

import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import RefreshToken

from .databases import use_tenant
from .models import ROOT_TENANT_ID
from .resolution import TENANT_CLAIM
from .selectors import find_user, get_tenant


class TenantJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication; the user is loaded from the request tenant's database, and must
    belong to the tenant its token names."""

    def authenticate(self, request):
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
        return user


def check_credentials(tenant_id, email, password):
    """The user whose email and password match, or None. Always pays one hash, so an unknown email
    takes as long as a wrong password."""
    user = find_user(tenant_id, email or "")
    if user is None:
        get_user_model()().set_password(password or "")
        return None
    return user if user.check_password(password or "") else None


def issue_tokens(user):
    refresh = RefreshToken.for_user(user)
    for token in (refresh, refresh.access_token):
        token[TENANT_CLAIM] = user.tenant_id
        token["email"] = user.email
        token["roles"] = list(user.roles)
    access = refresh.access_token
    return {
        "token": str(access),
        "refreshToken": str(refresh),
        "refreshTokenExpiryTime": datetime.datetime.fromtimestamp(refresh["exp"], tz=datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }


def token_is_usable(token):
    """For the websocket: the token's tenant is still usable and its user still active."""
    tenant = get_tenant(token.get(TENANT_CLAIM))
    if tenant is None or not tenant.is_usable:
        return False
    with use_tenant(tenant):
        return get_user_model().objects.filter(pk=token.get("user_id"), is_active=True).exists()


class TenantEmailBackend(BaseBackend):
    """Django's own login (the admin): root users only, who live in the main database."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = check_credentials(ROOT_TENANT_ID, username, password)
        if user is not None and user.is_active:
            return user
        return None

    def get_user(self, user_id):
        return get_user_model().objects.filter(pk=user_id, tenant_id=ROOT_TENANT_ID).first()
