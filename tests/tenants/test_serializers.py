"""What the fuzzer (tests/e2e/test_fuzz_api.py) found in the request bodies, pinned down as plain
regression tests: the OpenAPI schema states the tenant id rule (pattern, length) and that required strings
are not empty, so a client reading the schema knows them without a round trip."""

import json
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


def test_the_schema_states_the_tenant_id_rule(schema):
    tenant_id = request_body(schema, "/api/tenants", "post")["properties"]["id"]
    assert tenant_id["maxLength"] == TENANT_ID_MAX_LENGTH
    pattern = re.compile(tenant_id["pattern"])
    for good in ["acme", "demo-academy", "a1-b2"]:
        assert pattern.search(good) and TENANT_ID_PATTERN.fullmatch(good)
    for bad in ["Acme", "-acme", "a--b", "a_b", "аcme", "acme\n"]:
        assert not TENANT_ID_PATTERN.fullmatch(bad), bad


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
