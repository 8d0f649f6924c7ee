"""Every request has an id (diquis.request_context): the response's X-Request-ID, on every line logged while it
is served, Django's request log (written after the middleware chain) included."""

import logging
import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from diquis.asgi import application
from diquis.log_context import LogContextFilter
from diquis.request_context import RequestContext
from tests.support.users import client_for

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def records():
    """Every record logged, with the fields the log filter gives it."""

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.kept = []
            self.addFilter(LogContextFilter())

        def emit(self, record):
            self.kept.append(record)

    handler = Keep()
    logging.getLogger().addHandler(handler)
    yield handler.kept
    logging.getLogger().removeHandler(handler)


def test_a_response_carries_a_new_id_or_the_well_formed_one_sent(root_user):
    api = client_for(root_user)
    made = api.get("/api/users/me")
    assert GENERATED.match(made["X-Request-ID"])
    assert api.get("/api/users/me")["X-Request-ID"] != made["X-Request-ID"]
    assert api.get("/api/users/me", HTTP_X_REQUEST_ID="proxy-4f2a.1")["X-Request-ID"] == "proxy-4f2a.1"
    for forged in ("two words", "x" * 65, "line\nbreak", "ünïcode"):
        assert GENERATED.match(api.get("/api/users/me", HTTP_X_REQUEST_ID=forged)["X-Request-ID"])


@pytest.mark.django_db(transaction=True)
def test_through_the_asgi_application_django_s_request_log_names_the_request_its_user_and_tenant(root_user, records):
    token = client_for(root_user)._credentials["HTTP_AUTHORIZATION"]
    communicator = HttpCommunicator(
        application,
        "GET",
        "/api/tenants/no-such-tenant",
        headers=[(b"authorization", token.encode()), (b"x-request-id", b"from-the-proxy-1"), (b"host", b"localhost")],
    )
    response = async_to_sync(communicator.get_response)()
    assert response["status"] == 404
    assert (b"X-Request-ID", b"from-the-proxy-1") in response["headers"]
    (logged,) = [r for r in records if r.name == "django.request"]
    assert logged.getMessage() == "Not Found: /api/tenants/no-such-tenant"
    assert (logged.request_id, logged.user_id, logged.tenant) == ("from-the-proxy-1", str(root_user.pk), "root")


def test_a_user_django_has_not_loaded_is_left_out_and_stays_unloaded():
    loaded = []
    request = HttpRequest()
    request.user = SimpleLazyObject(lambda: loaded.append(True))
    context = RequestContext("abc")
    context.request = request
    assert context.log_fields() == {"request_id": "abc", "user_id": None, "tenant": None}
    assert loaded == []
