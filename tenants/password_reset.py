"""A forgotten password: the token (Django's default_token_generator) and the mail that carries it.

The token is an HMAC of the user's id, password hash, last sign-in and email, under SECRET_KEY, with a timestamp:
nothing is stored, a new password (or sign-in) spends it, and it expires after PASSWORD_RESET_TIMEOUT. It is made
by the job that sends the mail, never by the request, so it appears in no response, job argument or log line.
"""

import uuid

from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail

from .connections import use_tenant
from .models import User
from .selectors import find_user, get_tenant

SUBJECT = "Reset Password"


def token_is_valid(user, token):
    """Whether `token` resets `user`'s password. With no user (an unknown email, an inactive user) a throwaway
    one is checked instead, so the refusal costs what a wrong token costs."""
    if user is None:
        default_token_generator.check_token(User(pk=uuid.uuid4(), password="!"), token)
        return False
    return default_token_generator.check_token(user, token)


def _body(token, reset_endpoint):
    # The original service's words: the token, and where to send it with the email and the new password.
    return (
        f"Your password reset token is '{token}'. You can reset your password using the {reset_endpoint} "
        "endpoint, with your email, this token and your new password. If you did not ask for it, ignore this mail."
    )


def send_reset_mail(*, tenant_id, email, reset_endpoint):
    """Mail a reset token to the tenant's active user `email`; nothing when there is no such user (the request
    said the same either way)."""
    tenant = get_tenant(tenant_id)
    if tenant is None or not tenant.is_usable:
        return False
    with use_tenant(tenant):
        user = find_user(tenant_id, email)
        if user is None or not user.is_active:
            return False
        token = default_token_generator.make_token(user)
    send_mail(SUBJECT, _body(token, reset_endpoint), None, [user.email])
    return True
