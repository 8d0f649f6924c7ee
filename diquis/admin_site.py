"""The project's admin site: Django's own, saying whose it is, and with the API's sign-in throttles on its login."""

import math

from django.contrib import admin
from django.template.response import TemplateResponse

from tenants.models import ROOT_TENANT_ID
from tenants.throttles import login_wait


class DiquisAdminSite(admin.AdminSite):
    site_header = "Diquis"
    site_title = "Diquis admin"
    index_title = "Diquis administration"

    # For the sign-in throttles (tenants.throttles): the login form's email field, and whose accounts it signs in.
    login_email_field = "username"
    login_tenant = ROOT_TENANT_ID

    def login(self, request, extra_context=None):
        """Django's login, refused with 429 before any password is hashed once the client address or the
        account has used its budget: the same limits as POST /api/tokens, whose counters it shares."""
        if request.method == "POST":
            wait = login_wait(request, self)
            if wait is not None:
                return self.throttled(request, math.ceil(wait))
        return super().login(request, extra_context)

    def throttled(self, request, wait):
        context = {**self.each_context(request), "title": "Too many sign-in attempts", "wait": wait}
        response = TemplateResponse(request, "admin/login_throttled.html", context, status=429)
        response["Retry-After"] = str(wait)
        return response
