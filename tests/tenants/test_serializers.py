"""What the fuzzer (tests/e2e/test_fuzz_api.py) found in the request bodies, pinned down as plain
regression tests: the OpenAPI schema states the tenant id rule (pattern, length) and that required strings
are not empty, so a client reading the schema knows them without a round trip."""

import json
import math
import re

import pytest
from django.core.management import call_command

from tenants.validators import TENANT_ID_MAX_LENGTH, TENANT_ID_PATTERN


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    return json.loads(path.read_text())


def request_body(schema, path, method):
    ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def accepted_by(property_schema, value):
    """Whether a client validating against the schema accepts `value`: within the property's lengths, and
    matched by its pattern as JSON Schema reads one (an ECMA-262 regex, searched, not anchored: an empty
    pattern accepts everything). ECMA's `$` matches at the very end only; Python's also before a final
    newline, so it is read as `\\Z`."""
    pattern = re.sub(r"(?<!\\)\$", r"\\Z", property_schema.get("pattern", ""))
    return (
        property_schema.get("minLength", 0) <= len(value) <= property_schema.get("maxLength", math.inf)
        and re.search(pattern, value, re.ASCII) is not None
    )


GOOD_IDS = ["acme", "demo-academy", "a1-b2", "a" * TENANT_ID_MAX_LENGTH]
BAD_IDS = ["", "Acme", "-acme", "acme-", "a--b", "a_b", "a b", "аcme", "acme\n", "a" * (TENANT_ID_MAX_LENGTH + 1)]


def test_the_schema_states_the_tenant_id_rule_the_server_applies(schema):
    tenant_id = request_body(schema, "/api/tenants", "post")["properties"]["id"]
    assert tenant_id["maxLength"] == TENANT_ID_MAX_LENGTH
    for good in GOOD_IDS:
        assert accepted_by(tenant_id, good), good
        assert TENANT_ID_PATTERN.fullmatch(good), good
    for bad in BAD_IDS:
        assert not accepted_by(tenant_id, bad), f"the schema lets {bad!r} through"
        assert not (TENANT_ID_PATTERN.fullmatch(bad) and len(bad) <= TENANT_ID_MAX_LENGTH), bad


@pytest.mark.parametrize(
    ("path", "method", "fields"),
    [
        ("/api/tenants", "post", ["name", "password"]),
        ("/api/tenants/{tenant_id}", "put", ["name"]),
        ("/api/users", "post", ["password"]),
        ("/api/tokens", "post", ["email", "password"]),
        ("/api/tokens/refresh", "post", ["refreshToken"]),
    ],
)
def test_the_schema_says_required_strings_are_not_empty(schema, path, method, fields):
    properties = request_body(schema, path, method)["properties"]
    for field in fields:
        assert properties[field].get("minLength", 0) >= 1, field
