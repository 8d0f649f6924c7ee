"""The one response shape of `/api/...`: {"succeeded", "data", "messages"[, "errors"]} (API.md, "Envelope")."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

NOT_AUTHORIZED = "Not Authorized"
NOT_FOUND = "Not Found"


def envelope(data=None, messages=(), *, succeeded=True, errors=None):
    body = {"succeeded": succeeded, "data": data, "messages": list(messages)}
    if errors is not None:
        body["errors"] = errors
    return body


def ok(data=None, messages=(), *, status_code=status.HTTP_200_OK, headers=None):
    return Response(envelope(data, messages), status=status_code, headers=headers)


def accepted(data, message, *, location):
    """202: an operation a job carries out was accepted; `location` is where to follow it."""
    return ok(data, [message], status_code=status.HTTP_202_ACCEPTED, headers={"Location": location})


def found(value):
    """`value`, or the envelope's 404 when there is none (a selector's None)."""
    if value is None:
        raise exceptions.NotFound()
    return value


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable. Nothing was accepted; try again shortly."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


def envelope_of(data_serializer, name):
    """The OpenAPI shape of an envelope around `data_serializer`."""
    return inline_serializer(
        name=name,
        fields={
            "succeeded": serializers.BooleanField(),
            "data": data_serializer,
            "messages": serializers.ListField(child=serializers.CharField()),
        },
    )


def error_response(status_code, message):
    """An error envelope outside DRF (middleware), same shape as the handler's."""
    return envelope(None, [message], succeeded=False), status_code


@csrf_exempt  # it changes nothing; without this, CSRF would answer an unsafe method its HTML 403 instead of 404
def api_not_found(request, *args, **kwargs):
    """Any /api/ path no route matches, whatever the method: a 404 in the envelope, like every other API error."""
    body, status = error_response(404, NOT_FOUND)
    return JsonResponse(body, status=status)
