"""The project's admin site: Django's own, saying whose it is."""

from django.contrib import admin


class DiquisAdminSite(admin.AdminSite):
    site_header = "Diquis"
    site_title = "Diquis admin"
    index_title = "Diquis administration"
