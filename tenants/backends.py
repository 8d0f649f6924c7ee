"""The sign-in rule shared by the API and the admin, and Django's login backend (the admin) on it."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend

from .connections import release_pooled_sessions
from .models import ROOT_TENANT_ID
from .selectors import find_user


def check_credentials(tenant_id, email, password):
    """The user whose email and password match, or None. Always pays one hash, so an unknown email
    takes as long as a wrong password."""
    user = find_user(tenant_id, email or "")
    release_pooled_sessions()  # for the hash; saving a rehash takes one again
    if user is None:
        get_user_model()().set_password(password or "")
        return None
    return user if user.check_password(password or "") else None


class TenantEmailBackend(BaseBackend):
    """Django's own login (the admin): root users only, who live in the main database."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = check_credentials(ROOT_TENANT_ID, username, password)
        if user is not None and user.is_active:
            return user
        return None

    def get_user(self, user_id):
        return get_user_model().objects.filter(pk=user_id, tenant_id=ROOT_TENANT_ID).first()
