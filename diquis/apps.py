"""The configuration of two installed apps that are not the project's own (Django's way: INSTALLED_APPS names
a subclass of the app's AppConfig), so that the admin shows the project's names."""

from django.contrib.admin.apps import AdminConfig
from django_rq.apps import DjangoRqAdminConfig


class DiquisAdminConfig(AdminConfig):
    default_site = "diquis.admin_site.DiquisAdminSite"


class JobQueuesConfig(DjangoRqAdminConfig):
    """django-rq sets no verbose_name: its admin section would be titled after its label, "Django_Rq"."""

    verbose_name = "Job queues (RQ)"
