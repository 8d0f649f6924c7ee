"""Who may see the operator's pages (the job dashboards, /metrics): root users, and only them.

One rule for every page that is neither the API (JWT) nor a plain admin page: a signed-in root
(superuser) passes; an anonymous visitor is sent to the admin login; anyone else signed in gets 403.
"""

import functools

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseForbidden

LOGIN_URL = "admin:login"  # the admin's own login page, by its URL name
ROOT_ONLY = "Root users only."


def is_root(user):
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_superuser)


def refusal(user, next_path):
    """What a visitor who is not root gets: the login page (anonymous) or 403 (signed in)."""
    if user is None or not user.is_authenticated:
        return redirect_to_login(next_path, LOGIN_URL)
    return HttpResponseForbidden(ROOT_ONLY)


def root_required(view):
    """Django view decorator: the rule above, for views that would otherwise let any staff user in."""

    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not is_root(request.user):
            return refusal(request.user, request.get_full_path())
        return view(request, *args, **kwargs)

    return guarded
