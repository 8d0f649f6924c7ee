"""`migrate` leaves the root tenant, the root user and the `main` database server in place, and registers the
servers DIQUIS_DATABASE_SERVERS names (idempotent)."""

import logging
import sys

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS

from .models import MAIN_SERVER, ROOT_TENANT_ID, DatabaseServer, ProvisioningStatus, Role, Tenant, User
from .server_services import apply_configured_servers

DEVELOPMENT_ROOT_PASSWORD = "Password123!"

logger = logging.getLogger(__name__)


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


def seed_database_servers(using=DEFAULT_DB_ALIAS, stdout=None, **kwargs):
    """DIQUIS_DATABASE_SERVERS, applied at each `migrate`; a server it cannot use now is said on migrate's
    output (and logged) without failing it."""
    if using != DEFAULT_DB_ALIAS or not settings.DIQUIS_DATABASE_SERVERS.strip():
        return
    out = stdout or sys.stdout

    def warn(line):
        logger.warning("%s", line)
        out.write(f"WARNING: {line}\n")

    apply_configured_servers(settings.DIQUIS_DATABASE_SERVERS, warn=warn)
