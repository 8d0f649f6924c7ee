"""Read-side queries of the tenants domain that run on every request."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import ROOT_TENANT_ID
from tenants.selectors import get_tenant


@pytest.mark.django_db
def test_get_tenant_is_one_unordered_query_and_none_for_an_unknown_id():
    with CaptureQueriesContext(connection) as queries:
        assert get_tenant(ROOT_TENANT_ID).pk == ROOT_TENANT_ID
        assert get_tenant("no-such-tenant") is None
    assert len(queries) == 2
    assert all("ORDER BY" not in query["sql"] for query in queries.captured_queries)
    assert get_tenant("") is None
