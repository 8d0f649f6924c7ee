"""tenants.tokens.token_refusals: the open sockets' re-check of their access tokens, all of a process's at once."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import AccessToken

from notifications.framing import FORBIDDEN, REVOKED
from tenants.models import User
from tenants.services import revoke_tokens
from tenants.tokens import issue_tokens, token_refusal, token_refusals
from tests.support.factories import TenantFactory, UserFactory


def access(user):
    return AccessToken(issue_tokens(user)["token"])


def test_each_token_gets_its_own_answer_in_order(db):
    TenantFactory(id="acme")
    gone = TenantFactory(id="gone")
    active, deactivated, signed_out = (UserFactory(tenant_id="acme", email=f"{n}@acme.test") for n in "abc")
    of_gone = UserFactory(tenant_id="gone", email="x@gone.test")
    tokens = [access(user) for user in (active, deactivated, signed_out, of_gone)]
    User.objects.filter(pk=deactivated.pk).update(is_active=False)
    revoke_tokens(user_id=signed_out.pk)
    gone.is_active = False
    gone.save()
    assert token_refusals(tokens) == [None, REVOKED, REVOKED, FORBIDDEN]
    assert [token_refusal(token) for token in tokens] == [None, REVOKED, REVOKED, FORBIDDEN]


def test_many_tokens_cost_one_query_for_their_tenants_and_one_per_tenant(db):
    TenantFactory(id="acme")
    TenantFactory(id="beta")
    users = [
        UserFactory(tenant_id=tenant, email=f"u{i}@{tenant}.test") for tenant in ("acme", "beta") for i in range(15)
    ]
    tokens = [access(user) for user in users]
    with CaptureQueriesContext(connection) as one:
        assert token_refusals(tokens[:1]) == [None]
    with CaptureQueriesContext(connection) as thirty:
        assert token_refusals(tokens) == [None] * 30
    assert len(one) == 2
    assert len(thirty) == 3
