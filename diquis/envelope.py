"""The one response shape of `/api/...`: {"succeeded", "data", "messages"[, "errors"]} (API.md, "Envelope")."""

import logging

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import DatabaseError, DataError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

NOT_AUTHORIZED = "Not Authorized"
NOT_FOUND = "Not Found"


def envelope(data=None, messages=(), *, succeeded=True, errors=None):
    body = {"succeeded": succeeded, "data": data, "messages": list(messages)}
    if errors is not None:
        body["errors"] = errors
    return body


def ok(data=None, messages=(), *, status_code=status.HTTP_200_OK, headers=None):
    return Response(envelope(data, messages), status=status_code, headers=headers)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable. Nothing was accepted; try again shortly."


class BadRequest(exceptions.APIException):
    """A 400 with a message line and no field errors (e.g. "Cannot edit root tenant")."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request"


class TenantInvalid(exceptions.PermissionDenied):
    default_detail = "Tenant invalid"
    envelope_message = True


class InvalidCredentials(exceptions.AuthenticationFailed):
    default_detail = "Invalid credentials"
    envelope_message = True


class AccountDeactivated(exceptions.PermissionDenied):
    default_detail = "User account deactivated"
    envelope_message = True


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


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error of the API comes out in the envelope, never a traceback."""
    # ObjectDoesNotExist: the object of the call vanished between the view's check and the service's
    # locked read (a deletion finishing in the worker meanwhile): it is not found, not a server error.
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DataError):
        # The database refused a value of the request (a NUL character, a number out of range): bad input,
        # not a backing service that is down.
        exc = BadRequest("A value in the request cannot be used (e.g. it contains a NUL character).")
    elif isinstance(exc, RedisError | DatabaseError):
        logger.warning("backing service unavailable: %s", type(exc).__name__)
        exc = ServiceUnavailable()
    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            envelope(None, ["An unexpected error occurred."], succeeded=False),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    errors = None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(
        envelope(None, _messages_for(exc), succeeded=False, errors=errors),
        status=exc.status_code,
        headers=headers,
    )


def error_response(status_code, message):
    """An error envelope outside DRF (middleware), same shape as the handler's."""
    return envelope(None, [message], succeeded=False), status_code


@csrf_exempt  # it changes nothing; without this, CSRF would answer an unsafe method its HTML 403 instead of 404
def api_not_found(request, *args, **kwargs):
    """Any /api/ path no route matches, whatever the method: a 404 in the envelope, like every other API error."""
    body, status = error_response(404, NOT_FOUND)
    return JsonResponse(body, status=status)
