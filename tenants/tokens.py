"""The JWTs of the API, which carry the tenant: issued at sign-in, renewed by a refresh token, and checked
again for the websocket while it stays open."""

import datetime

from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenError

from notifications.framing import FORBIDDEN, REVOKED, UNAVAILABLE
from notifications.timestamps import format_utc

from . import selectors
from .backends import check_credentials
from .connections import use_tenant
from .exceptions import AccountDeactivated, InvalidCredentials, TenantDatabaseUnavailable, TenantInvalid
from .resolution import TENANT_CLAIM
from .signing import RefreshToken

INVALID_REFRESH_TOKEN = "Invalid or expired refresh token"
# Every token carries its user's and its tenant's generation; raising either revokes what was issued before.
GENERATION_CLAIM = "generation"
TENANT_GENERATION_CLAIM = "tenant_generation"


def issue_tokens(user, *, tenant=None, session_ends=None):
    """An access and a refresh token for the user. A refresh passes the `exp` of the refresh token it was
    given as `session_ends`: the session is absolute, REFRESH_TOKEN_LIFETIME from sign-in however often it
    is renewed, and an access token never outlives it."""
    tenant = tenant or selectors.get_tenant(user.tenant_id)
    refresh = RefreshToken.for_user(user)
    if session_ends is not None:
        refresh["exp"] = session_ends
    for token in (refresh, refresh.access_token):
        token[TENANT_CLAIM] = user.tenant_id
        token["email"] = user.email
        token["roles"] = list(user.roles)
        token[GENERATION_CLAIM] = user.token_generation
        token[TENANT_GENERATION_CLAIM] = tenant.token_generation if tenant is not None else 0
    access = refresh.access_token
    access["exp"] = min(access["exp"], refresh["exp"])
    return {
        "token": str(access),
        "refreshToken": str(refresh),
        "refreshTokenExpiryTime": format_utc(datetime.datetime.fromtimestamp(refresh["exp"], tz=datetime.UTC)),
    }


def is_revoked(token, *, user, tenant):
    """Was the token issued before its user's (sign-out, new password, deactivation) or its tenant's
    (deactivation) tokens were revoked?

    A token without the claims was issued before revocation existed. An access token of that time passes
    (it lives an hour at most); a refresh token does not, since it would renew into tokens of the current
    generation: its user signs in once more."""
    if GENERATION_CLAIM not in token.payload:
        return token.token_type != "access"
    return (
        token[GENERATION_CLAIM] != user.token_generation
        or token.get(TENANT_GENERATION_CLAIM, 0) != tenant.token_generation
    )


def sign_in(tenant_id, email, password):
    """Tokens for the user whose credentials match, if active."""
    user = check_credentials(tenant_id, email, password)
    if user is None:
        raise InvalidCredentials()
    if not user.is_active:
        raise AccountDeactivated()
    return issue_tokens(user)


def refresh_tokens(raw_refresh):
    """New tokens for a valid, unrevoked refresh token whose tenant is usable and whose user is still active.

    The same refresh token may be used again (the original web client re-sends the one of its sign-in), but
    the tokens it gives end when it ends: a stolen one cannot be renewed for ever."""
    try:
        refresh = RefreshToken(raw_refresh)
    except TokenError as error:
        raise InvalidCredentials(INVALID_REFRESH_TOKEN) from error
    tenant = selectors.get_tenant(refresh.get(TENANT_CLAIM))
    if tenant is None or not tenant.is_usable:
        raise TenantInvalid()
    with use_tenant(tenant):
        user = selectors.users_of(tenant.id).filter(pk=refresh.get("user_id")).first()
    if user is None or is_revoked(refresh, user=user, tenant=tenant):
        raise InvalidCredentials(INVALID_REFRESH_TOKEN)
    if not user.is_active:
        raise AccountDeactivated()
    return issue_tokens(user, tenant=tenant, session_ends=refresh["exp"])


def token_refusal(token):
    """For the websocket's handshake: None while the access token stands, else the close code (token_refusals)."""
    return token_refusals([token])[0]


def token_refusals(tokens):
    """For open websockets, all of a process's at once: for each access token, None while it stands, else the
    close code: REVOKED (the user is gone, inactive or signed out), FORBIDDEN (the tenant is not usable),
    UNAVAILABLE (the tenant's database server does not answer: the check cannot be made now).

    One query for the tokens' tenants, then one per usable tenant for its users: thousands of sockets cost a
    handful of queries, not three each."""
    tenants = selectors.tenants_by_id({token.get(TENANT_CLAIM) for token in tokens})
    wanted = {}
    for token in tokens:
        wanted.setdefault(token.get(TENANT_CLAIM), set()).add(str(token.get("user_id")))
    active_users = {}  # tenant id -> {user id: user}, or None when its database does not answer
    for tenant_id, user_ids in wanted.items():
        tenant = tenants.get(tenant_id)
        if tenant is None or not tenant.is_usable:
            continue
        try:
            with use_tenant(tenant):
                users = get_user_model().objects.filter(pk__in=user_ids, is_active=True)
                active_users[tenant_id] = {str(user.pk): user for user in users}
        except TenantDatabaseUnavailable:
            active_users[tenant_id] = None
    return [_refusal(token, tenants, active_users) for token in tokens]


def _refusal(token, tenants, active_users):
    tenant_id = token.get(TENANT_CLAIM)
    tenant = tenants.get(tenant_id)
    if tenant is None or not tenant.is_usable:
        return FORBIDDEN
    users = active_users[tenant_id]
    if users is None:
        return UNAVAILABLE
    user = users.get(str(token.get("user_id")))
    if user is None or is_revoked(token, user=user, tenant=tenant):
        return REVOKED
    return None
