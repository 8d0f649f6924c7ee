"""`migrate` leaves the root tenant, the root user and the `main` database server in place (idempotent)."""

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS

from .models import MAIN_SERVER, ROOT_TENANT_ID, DatabaseServer, ProvisioningStatus, Role, Tenant, User

DEVELOPMENT_ROOT_PASSWORD = "Password123!"


def seed_root(using=DEFAULT_DB_ALIAS, **kwargs):
    if using != DEFAULT_DB_ALIAS:
        return
    email, password = settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD
    if not email or not password:
        raise ImproperlyConfigured("DIQUIS_ROOT_EMAIL and DIQUIS_ROOT_PASSWORD are required when DEBUG is false.")
    if not settings.DEBUG:
        _refuse_weak(email, password)
    DatabaseServer.objects.using(using).get_or_create(name=MAIN_SERVER)
    Tenant.objects.using(using).get_or_create(
        id=ROOT_TENANT_ID,
        defaults={
            "name": "Root",
            "admin_email": email,
            "status": ProvisioningStatus.ACTIVE,
            "is_provisioned": True,
        },
    )
    users = User.objects.db_manager(using)
    if not users.filter(tenant_id=ROOT_TENANT_ID, email=email.lower()).exists():
        users.create_user(email, password, tenant_id=ROOT_TENANT_ID, roles=[Role.ROOT], first_name="Root")


def _refuse_weak(email, password):
    """The root may do everything: its password passes the validators every other password passes."""
    if password == DEVELOPMENT_ROOT_PASSWORD:
        raise ImproperlyConfigured("DIQUIS_ROOT_PASSWORD is the documented development default; choose another.")
    try:
        password_validation.validate_password(password, user=User(email=email, tenant_id=ROOT_TENANT_ID))
    except ValidationError as error:
        raise ImproperlyConfigured(f"DIQUIS_ROOT_PASSWORD is too weak: {' '.join(error.messages)}") from error
