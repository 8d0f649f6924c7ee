from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    """A tenant: its row in the public schema, its schema made (and migrated) when it is saved the first time."""

    name = models.CharField(max_length=100)

    auto_create_schema = True


class Domain(DomainMixin):
    pass
