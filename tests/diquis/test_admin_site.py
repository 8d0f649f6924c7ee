"""The admin says whose it is (Diquis, not Django), and django-rq's section has a title a root admin can read."""

import pytest
from django.test import Client

from tests.support.users import make_root_user


@pytest.fixture
def admin(db):
    client = Client()
    client.force_login(make_root_user())
    return client


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_the_admin_is_titled_diquis(admin):
    html = page(admin, "/admin/")
    assert "<title>Diquis administration | Diquis admin</title>" in html
    assert '<div id="site-name"><a href="/admin/">Diquis</a></div>' in html
    assert "<h1>Diquis administration</h1>" in html
    assert "Django administration" not in html
    assert "Django site admin" not in html


def test_the_django_rq_section_has_a_proper_title(admin):
    html = page(admin, "/admin/")
    assert 'href="/admin/django_rq/" class="section" title="Models in the Job queues (RQ) application">' in html
    assert "Django_Rq" not in html
    assert "<h1>Job queues (RQ) administration</h1>" in page(admin, "/admin/django_rq/")
