"""The JWTs of the API, which carry the tenant: issued at sign-in, renewed by a refresh token, and checked
again for the websocket while it stays open."""

import datetime

from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenError

from notifications.timestamps import format_utc

from . import selectors
from .backends import check_credentials
from .connections import use_tenant
from .exceptions import AccountDeactivated, InvalidCredentials, TenantInvalid
from .resolution import TENANT_CLAIM
from .signing import RefreshToken

INVALID_REFRESH_TOKEN = "Invalid or expired refresh token"


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
        "refreshTokenExpiryTime": format_utc(datetime.datetime.fromtimestamp(refresh["exp"], tz=datetime.UTC)),
    }


def sign_in(tenant_id, email, password):
    """Tokens for the user whose credentials match, if active."""
    user = check_credentials(tenant_id, email, password)
    if user is None:
        raise InvalidCredentials()
    if not user.is_active:
        raise AccountDeactivated()
    return issue_tokens(user)


def refresh_tokens(raw_refresh):
    """New tokens for a valid refresh token whose tenant is usable and whose user is still active."""
    try:
        refresh = RefreshToken(raw_refresh)
    except TokenError as error:
        raise InvalidCredentials(INVALID_REFRESH_TOKEN) from error
    tenant = selectors.get_tenant(refresh.get(TENANT_CLAIM))
    if tenant is None or not tenant.is_usable:
        raise TenantInvalid()
    with use_tenant(tenant):
        user = selectors.users_of(tenant.id).filter(pk=refresh.get("user_id")).first()
    if user is None:
        raise InvalidCredentials(INVALID_REFRESH_TOKEN)
    if not user.is_active:
        raise AccountDeactivated()
    return issue_tokens(user)


def token_is_usable(token):
    """For the websocket: the token's tenant is still usable and its user still active."""
    tenant = selectors.get_tenant(token.get(TENANT_CLAIM))
    if tenant is None or not tenant.is_usable:
        return False
    with use_tenant(tenant):
        return get_user_model().objects.filter(pk=token.get("user_id"), is_active=True).exists()
