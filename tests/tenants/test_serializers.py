"""What the fuzzer (tests/e2e/test_fuzz_api.py) found, pinned down as plain regression tests.

1. A tenant that vanishes between the view's existence check and the service's locked read (its
   deletion finishing in the worker meanwhile) was a 500: the service's `DoesNotExist` escaped. The
   fuzzer met it as a second DELETE racing the first one's job. It is a 404 in the envelope now.
2. The OpenAPI schema states the tenant id rule (pattern, length) and that required strings are not
   empty, so a client reading the schema knows them without a round trip.
3. Answers the schema did not allow: a 400 for deleting or editing root that it did not document,
   `?status=` (empty) and `?after=0.0` accepted, and /health answering any method.
"""

import json
import re

import pytest
from django.core.management import call_command

from jobs.models import Job
from tenants import views
from tenants.models import ProvisioningStatus, Tenant
from tenants.validators import TENANT_ID_MAX_LENGTH, TENANT_ID_PATTERN
from tests.support.factories import TenantFactory

NOT_FOUND = {"succeeded": False, "data": None, "messages": ["Not Found"]}


@pytest.fixture
def vanishing_tenant(monkeypatch, db):
    """`acme` passes the view's check, then is gone before the service locks it."""
    TenantFactory(id="acme", status=ProvisioningStatus.FAILED)
    check = views._tenant_or_404

    def check_then_vanish(tenant_id):
        tenant = check(tenant_id)
        Tenant.objects.filter(pk=tenant_id).delete()
        return tenant

    monkeypatch.setattr(views, "_tenant_or_404", check_then_vanish)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("delete", "/api/tenants/acme", None),
        ("put", "/api/tenants/acme", {"name": "Acme", "isActive": True}),
        ("post", "/api/tenants/acme/retry", None),
    ],
)
def test_a_tenant_deleted_meanwhile_is_404_not_500(root_api, vanishing_tenant, method, path, body):
    response = getattr(root_api, method)(path, body, format="json")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Job.objects.exists()


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


def test_the_schema_documents_400_for_editing_and_deleting_root():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]["/api/tenants/{tenant_id}"]
    assert "400" in paths["put"]["responses"] and "400" in paths["delete"]["responses"]


@pytest.mark.parametrize(
    "query", ["/api/tenants?status=", "/api/notifications?after=0.0", "/api/notifications?after=-1"]
)
def test_values_the_schema_refuses_are_400(root_api, query):
    response = root_api.get(query)
    assert response.status_code == 400
    assert response.json()["succeeded"] is False


def test_health_answers_get_and_head_only(api):
    assert api.get("/health").status_code in {200, 503}
    assert api.head("/health").status_code in {200, 503}
    assert api.post("/health").status_code == 405
    assert api.delete("/health").status_code == 405
