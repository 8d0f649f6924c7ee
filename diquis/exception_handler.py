"""DRF's EXCEPTION_HANDLER: every error of the API comes out in the envelope (diquis.envelope), never a
traceback. The one place where the domain's plain errors (tenants.exceptions) get their HTTP status."""

import logging

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.db import DatabaseError, DataError
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

from tenants.exceptions import (
    AccountDeactivated,
    Conflict,
    InvalidCredentials,
    Refused,
    TenantBeingMoved,
    TenantDatabaseUnavailable,
    TenantInvalid,
    TenantsError,
)
from tenants.middleware import move_refusal

from .envelope import NOT_AUTHORIZED, NOT_FOUND, PayloadTooLarge, ServiceUnavailable, envelope

logger = logging.getLogger(__name__)

# The domain's errors, most specific first. Their messages are lines API.md names: the envelope shows them as
# they are, where other authentication and permission errors only say "Not Authorized".
DOMAIN_STATUS = (
    (InvalidCredentials, status.HTTP_401_UNAUTHORIZED),
    (TenantInvalid, status.HTTP_403_FORBIDDEN),
    (AccountDeactivated, status.HTTP_403_FORBIDDEN),
    (Conflict, status.HTTP_409_CONFLICT),
    (Refused, status.HTTP_400_BAD_REQUEST),
    # The tenant's own database server does not answer (the main database does: that is ServiceUnavailable).
    (TenantDatabaseUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
)


def _moving(error):
    """503 with Retry-After: the tenant's database refuses writes while it is moved (API.md, the move call)."""
    exc = ServiceUnavailable(error.message)
    exc.envelope_message = True
    exc.wait = settings.DIQUIS_MOVE_RETRY_AFTER
    return exc


def _from_domain(error, context):
    if isinstance(error, TenantBeingMoved):
        return _moving(error)
    code = next((code for kind, code in DOMAIN_STATUS if isinstance(error, kind)), status.HTTP_400_BAD_REQUEST)
    if error.field and code == status.HTTP_400_BAD_REQUEST:
        return exceptions.ValidationError({error.field: [error.message]})
    exc = exceptions.APIException(error.message)
    exc.status_code = code
    exc.envelope_message = True
    if code == status.HTTP_401_UNAUTHORIZED:
        # What DRF's APIView does for its own AuthenticationFailed: a 401 carries its challenge.
        view, request = context.get("view"), context.get("request")
        exc.auth_header = view.get_authenticate_header(request) if view is not None and request is not None else None
    return exc


def _field_errors(detail):
    """DRF's ValidationError detail, flattened to {"field": ["line", ...]}; nested paths use dots."""
    if isinstance(detail, list):
        return {"nonFieldErrors": [str(item) for item in detail]}
    errors = {}
    for field, value in detail.items():
        key = "nonFieldErrors" if field == "non_field_errors" else field
        if isinstance(value, dict):
            for sub, lines in _field_errors(value).items():
                errors[f"{key}.{sub}"] = lines
        else:
            errors[key] = [str(item) for item in (value if isinstance(value, list) else [value])]
    return errors


def _messages_for(exc):
    """Auth errors say only "Not Authorized" unless they are one of the lines API.md names."""
    if getattr(exc, "envelope_message", False):
        return [str(exc.detail)]
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed | exceptions.PermissionDenied):
        return [NOT_AUTHORIZED]
    if isinstance(exc, exceptions.NotFound):
        return [NOT_FOUND]
    if isinstance(exc.detail, list | dict):
        return ["One or more validation errors occurred."]
    return [str(exc.detail)]


def _as_api_exception(exc, context):
    """The exception as DRF's kind, or None for a bug (a 500)."""
    refusal = move_refusal(exc, getattr(context.get("request"), "tenant", None))
    if refusal is not None:
        return _moving(refusal)
    if isinstance(exc, TenantsError):
        return _from_domain(exc, context)
    # ObjectDoesNotExist: the object of the call vanished between the view's check and the service's
    # locked read (a deletion finishing in the worker meanwhile): it is not found, not a server error.
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, met while DRF reads the body
        return PayloadTooLarge()
    if isinstance(exc, DataError):
        # The database refused a value of the request (a NUL character, a number out of range): bad input,
        # not a backing service that is down.
        return exceptions.ParseError("A value in the request cannot be used (e.g. it contains a NUL character).")
    if isinstance(exc, RedisError | DatabaseError):
        logger.warning("backing service unavailable: %s (%s)", type(exc).__name__, type(exc.__cause__).__name__)
        return ServiceUnavailable()
    return exc if isinstance(exc, exceptions.APIException) else None


def exception_handler(exc, context):
    api_exception = _as_api_exception(exc, context)
    if api_exception is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            envelope(None, ["An unexpected error occurred."], succeeded=False),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    errors = None
    if isinstance(api_exception, exceptions.ValidationError):
        errors = _field_errors(api_exception.detail)
    headers = {}
    if getattr(api_exception, "auth_header", None):
        headers["WWW-Authenticate"] = api_exception.auth_header
    if getattr(api_exception, "wait", None):
        headers["Retry-After"] = str(int(api_exception.wait))
    return Response(
        envelope(None, _messages_for(api_exception), succeeded=False, errors=errors),
        status=api_exception.status_code,
        headers=headers,
    )
