"""The rules for a new tenant's id (API.md): a slug, at most 50 characters, not a reserved name.

An isolated tenant's database is named <prefix><id>, and the template databases <prefix>template_<hash>:
ids starting with the template label are refused, so a tenant can never take (or drop) a template, and
so is an id whose database name is taken already by a database that is no tenant's. (An existing
tenant's id is left to the caller's 409.)
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from .connections import database_name_for
from .models import Tenant
from .provisioning.stores import main_store
from .provisioning.template import TEMPLATE_LABEL

# In the dialect both Python and JSON Schema (the OpenAPI document) read; matched whole (fullmatch), so
# a trailing newline, which `$` alone would let through, is refused.
TENANT_ID_REGEX = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
TENANT_ID_PATTERN = re.compile(TENANT_ID_REGEX, re.ASCII)
TENANT_ID_MAX_LENGTH = 50
RESERVED_TENANT_IDS = frozenset(
    {
        "root",
        "admin",
        "www",
        "api",
        "static",
        "media",
        "hubs",
        "rq",
        "health",
        "metrics",
        "postgres",
        "template0",
        "template1",
        "default",
        "public",
        "system",
        "diquis",
        # Paths under /api/tenants/ of their own (API.md)
        "tenant-options",
        "upgrade-status",
    }
)


def validate_tenant_id(value):
    if len(value) > TENANT_ID_MAX_LENGTH:
        raise ValidationError(f"Id must be at most {TENANT_ID_MAX_LENGTH} characters.")
    if not TENANT_ID_PATTERN.fullmatch(value):
        raise ValidationError("Id may contain only lowercase letters a-z, digits and single hyphens between them.")
    if (
        value in RESERVED_TENANT_IDS
        or value.startswith(TEMPLATE_LABEL)
        or value.startswith(settings.DIQUIS_TENANT_DATABASE_PREFIX.rstrip("_"))
    ):
        raise ValidationError(f"'{value}' is a reserved name.")
    if main_store().exists(database_name_for(value)) and not Tenant.objects.filter(pk=value).exists():
        # e.g. the main database itself when its name starts with the prefix (diquis_main and id "main"):
        # the tenant would be "provisioned" into it, and its deletion would drop it. The database is asked
        # first: a new id has none, so the usual creation pays one query, not two.
        raise ValidationError(f"'{value}' would take the name of an existing database.")
