"""Sets the request's tenant (and the database its tenant-side rows live in) for every API call."""

import logging

import psycopg
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import JsonResponse
from psycopg import errors

from diquis.envelope import NOT_AUTHORIZED, ServiceUnavailable, error_response

from .connections import use_tenant
from .exceptions import TenantBeingMoved, TenantDatabaseUnavailable, TenantInvalid
from .models import ProvisioningStatus, Tenant
from .resolution import TenantMismatch, resolve_tenant_id
from .selectors import get_tenant

logger = logging.getLogger(__name__)

# API calls that belong to no tenant: anonymous lookups, the schema and its docs.
TENANT_FREE_PREFIXES = ("/api/tenants/tenant-options", "/api/schema", "/api/docs", "/api/redoc")


# What a tenant's database answers while a move refuses its writes (tenants.provisioning.moves.refuse_writes):
# a write in a read-only transaction, or the end of a session that was open when the refusal began (AdminShutdown
# when it is ended mid-statement; a plain OperationalError, the connection lost, when it is ended between two).
_MOVE_REFUSALS = (errors.ReadOnlySqlTransaction, psycopg.OperationalError)


def move_refusal(error, tenant):
    """TenantBeingMoved when `error` (a database error of a request of `tenant`, the tenant as the request
    found it) is a move refusing writes, else None. The exception handler answers it 503 with Retry-After.
    A request that found the tenant Active may have met a move that began after it did: the catalog is asked
    again then (on this error path only)."""
    lost = isinstance(error, TenantDatabaseUnavailable)  # the session ended under the request, as a lost one
    refused = isinstance(error, DatabaseError) and isinstance(error.__cause__, _MOVE_REFUSALS)
    if tenant is None or not (lost or refused):
        return None
    moving = tenant.status == ProvisioningStatus.MOVING
    if not moving:
        try:
            moving = Tenant.objects.filter(pk=tenant.pk, status=ProvisioningStatus.MOVING).exists()
        except DatabaseError:
            return None  # the main database is what failed: the plain 503 says so
    return TenantBeingMoved() if moving else None


def _refuse(message, status):
    body, status = error_response(status, message)
    return JsonResponse(body, status=status)


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = request.validated_token = None
        if not request.path.startswith("/api/") or request.path.startswith(TENANT_FREE_PREFIXES):
            return self.get_response(request)
        try:
            tenant_id, request.validated_token = resolve_tenant_id(request)
        except TenantMismatch:
            return _refuse(NOT_AUTHORIZED, 403)
        except DisallowedHost:
            return _refuse("Bad Request", 400)
        try:
            tenant = get_tenant(tenant_id)
        except DatabaseError:  # before DRF runs, so its handler cannot turn this into the envelope's 503
            logger.warning("main database unavailable while resolving the tenant", exc_info=True)
            return _refuse(ServiceUnavailable.default_detail, 503)
        if tenant is None or not tenant.is_usable:
            return _refuse(TenantInvalid.message, 403)
        request.tenant = tenant
        with use_tenant(tenant):
            return self.get_response(request)

    def process_exception(self, request, exception):
        """A view outside DRF (whose handler answers for its own) met the tenant's database server down: the
        same 503 as DRF's, not Django's 500 page."""
        if isinstance(exception, TenantDatabaseUnavailable):
            return _refuse(exception.message, 503)
        return None
