"""The parts of the OpenAPI schema that no single view knows: the bearer scheme, the error envelope of
every call (API.md, "Envelope"), the `tenant` header, the Location of a 202, and the two plain Django
views of API.md (/health and SignalR's negotiate), which drf-spectacular cannot see.

The views describe their own bodies with `extend_schema`; the rules below hold for every view alike,
so they are written once here instead of on each one. The schema is checked by drf-spectacular's own
validation (`manage.py spectacular --validate --fail-on-warn`, see tests/test_openapi.py).
"""

import re

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.openapi import AutoSchema

from notifications.routing import HUB_PATH, NEGOTIATE_PATH
from tenants.middleware import TENANT_FREE_PREFIXES

ERROR_SCHEMA = "ErrorEnvelope"
HEALTH_SCHEMA = "Health"
NEGOTIATE_SCHEMA = "SignalRNegotiation"

# API.md, "Envelope": when each status is answered.
ERROR_DESCRIPTIONS = {
    "400": "Validation failed: human-readable lines in `messages`, per field in `errors` (camelCase keys).",
    "401": 'No, invalid or expired bearer token: `["Not Authorized"]`.',
    "403": 'Authenticated but wrong role or wrong tenant: `["Not Authorized"]` (or `["Tenant invalid"]`).',
    "404": 'Unknown object: `["Not Found"]`.',
    "409": "Conflict: exists already, an operation is in flight, or the wrong state.",
    "413": "The request body is larger than the server takes.",
    "429": "Too many requests: sign-in or password reset attempts from this address or for this account, or "
    "creations, refreshes and password changes of this user; see `Retry-After`.",
    "503": "A backing service (Redis, the database) is down and nothing was accepted; or the tenant's database is "
    'being moved and refuses writes for now: `["Tenant is being moved; retry shortly"]`, see `Retry-After`.',
}

# Statuses that depend on the call's meaning rather than its shape (the rest is derived below).
EXTRA_ERRORS = {
    ("/api/tokens", "post"): {"401", "403", "429"},
    ("/api/tokens/refresh", "post"): {"401", "403", "429"},
    ("/api/tokens/{refresh_token}", "get"): {"401", "403", "429"},
    ("/api/tenants", "post"): {"409", "429"},
    ("/api/tenants/{tenant_id}", "put"): {"400", "409"},
    ("/api/tenants/{tenant_id}", "delete"): {"400", "409"},
    ("/api/tenants/{tenant_id}/retry", "post"): {"409"},
    ("/api/tenants/{tenant_id}/move", "post"): {"400", "409"},
    ("/api/database-servers/{name}/drain", "post"): {"409"},
    ("/api/users", "post"): {"409", "429"},
    ("/api/identity/users", "post"): {"409", "429"},
    ("/api/identity/users/{user_id}", "put"): {"409"},
    ("/api/identity/users/{user_id}", "delete"): {"400"},
    ("/api/identity/profile", "put"): {"409"},
    ("/api/identity/change-password", "put"): {"429"},
    # Anonymous, but of a tenant: an unusable one is refused (`["Tenant invalid"]`).
    ("/api/identity/forgot-password", "post"): {"403", "429"},
    ("/api/identity/reset-password", "post"): {"403", "429"},
    ("/api/database-servers", "post"): {"409"},
    ("/api/database-servers/{name}", "delete"): {"400", "409"},
    ("/api/upgrades", "post"): {"409"},
    ("/api/upgrades/{upgrade_id}/pause", "post"): {"409"},
    ("/api/upgrades/{upgrade_id}/resume", "post"): {"409"},
    ("/api/upgrades/{upgrade_id}/cancel", "post"): {"409"},
}

# Path parameters that name no object: a bad one is a 401, not a 404.
NOT_AN_OBJECT = {("/api/tokens/{refresh_token}", "get")}

LOCATIONS = {
    ("/api/tenants", "post"): "The new tenant: `/api/tenants/<id>`.",
    ("/api/tenants/{tenant_id}/move", "post"): "The tenant being moved: `/api/tenants/<id>`.",
    ("/api/database-servers/{name}/drain", "post"): "The server being drained: `/api/database-servers/<name>`.",
}


class TenantJWTScheme(SimpleJWTScheme):
    """tenants.authentication.TenantJWTAuthentication is simplejwt's, with a tenant check: the same bearer scheme."""

    target_class = "tenants.authentication.TenantJWTAuthentication"
    name = "jwtAuth"


class OperationIdSchema(AutoSchema):
    """Operation ids from the view and the method (`getTenantList`, `postTenantRetry`), unique because
    each path has its own view; the default guesses "list" vs "retrieve" from the response, which an
    envelope hides."""

    def get_operation_id(self):
        view_name = re.sub(r"View$", "", type(self.view).__name__)
        return f"{self.method.lower()}{view_name}"


def _error_envelope():
    return {
        "type": "object",
        "properties": {
            "succeeded": {"type": "boolean", "enum": [False]},
            "data": {"nullable": True, "example": None},
            "messages": {"type": "array", "items": {"type": "string"}},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "Only for 400: the lines of each field, camelCase.",
            },
        },
        "required": ["succeeded", "data", "messages"],
    }


def _health():
    status = {"type": "string", "enum": ["ok", "down"]}
    return {
        "type": "object",
        "properties": {
            "database": status,
            "redis": status,
            "workers": {"type": "integer", "minimum": 0},
            "databaseServers": {
                "type": "object",
                "additionalProperties": status,
                "description": "Each database server by name (`main` first); one that is down does not make a 503.",
            },
        },
        "required": ["database", "redis", "workers", "databaseServers"],
    }


def _errors_of(path, method, operation):
    statuses = {"503"}
    if operation.get("requestBody") or any(p["in"] == "query" for p in operation.get("parameters", [])):
        statuses.add("400")
    if operation.get("requestBody"):
        statuses.add("413")
    if operation.get("security") and {} not in operation["security"]:
        statuses |= {"401", "403"}
    if "{" in path and (path, method) not in NOT_AN_OBJECT:
        statuses.add("404")
    return statuses | EXTRA_ERRORS.get((path, method), set())


def _tenant_header():
    return {
        "in": "header",
        "name": "tenant",
        "schema": {"type": "string"},
        "required": False,
        "description": "The tenant of the call when the token does not name one (default `root`).",
    }


def _health_path():
    ref = {"$ref": f"#/components/schemas/{HEALTH_SCHEMA}"}
    return {
        "get": {
            "operationId": "getHealth",
            "summary": "The database, Redis, the number of live workers and each database server.",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": {"description": "Everything answers.", "content": {"application/json": {"schema": ref}}},
                "503": {"description": "Names what is down.", "content": {"application/json": {"schema": ref}}},
            },
        }
    }


def _negotiation():
    transport = {
        "type": "object",
        "properties": {
            "transport": {"type": "string", "enum": ["WebSockets"]},
            "transferFormats": {"type": "array", "items": {"type": "string", "enum": ["Text"]}},
        },
    }
    return {
        "type": "object",
        "description": "SignalR's transport protocol (not the API envelope). Version 0 clients get no connectionToken.",
        "properties": {
            "connectionId": {"type": "string"},
            "connectionToken": {"type": "string"},
            "negotiateVersion": {"type": "integer", "enum": [0, 1]},
            "availableTransports": {"type": "array", "items": transport},
        },
        "required": ["connectionId", "negotiateVersion", "availableTransports"],
    }


def _negotiate_path():
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    return {
        "post": {
            "operationId": "postNegotiate",
            "summary": f"Start a SignalR connection to /{HUB_PATH} (then open the websocket with its token).",
            "tags": ["hubs"],
            "parameters": [
                {"in": "query", "name": "negotiateVersion", "schema": {"type": "integer", "minimum": 0}},
                {
                    "in": "query",
                    "name": "access_token",
                    "schema": {"type": "string"},
                    "description": "The access JWT, when not sent as a bearer header.",
                },
            ],
            "security": [{"jwtAuth": []}],
            "responses": {
                "200": {
                    "description": "The connection's id and token, and its one transport.",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{NEGOTIATE_SCHEMA}"}}},
                },
                "400": {"description": "A bad negotiateVersion.", "content": {"application/json": {"schema": error}}},
                "401": {
                    "description": "No, invalid or expired token.",
                    "content": {"application/json": {"schema": error}},
                },
            },
        }
    }


def document_envelope_errors(result, generator, request, public):
    """POSTPROCESSING_HOOK: add the error responses, the tenant header, Location headers, /health and
    the SignalR negotiate call."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = _error_envelope()
    schemas[HEALTH_SCHEMA] = _health()
    schemas[NEGOTIATE_SCHEMA] = _negotiation()
    error_ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_errors_of(path, method, operation)):
                responses.setdefault(
                    status,
                    {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": error_ref}}},
                )
            if not path.startswith(TENANT_FREE_PREFIXES):  # the `tenant` header means nothing to them
                operation.setdefault("parameters", []).append(_tenant_header())
            if (path, method) in LOCATIONS:
                for status, response in responses.items():
                    if status.startswith("2"):
                        response["headers"] = {
                            "Location": {"schema": {"type": "string"}, "description": LOCATIONS[(path, method)]}
                        }
    result["paths"]["/health"] = _health_path()
    result["paths"][f"/{NEGOTIATE_PATH}"] = _negotiate_path()
    return result
