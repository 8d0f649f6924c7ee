"""The admin's Upgrades page without a browser: the figures it renders (and serves as JSON), its buttons going
through tenants.upgrade_services, refusals said as messages, the start form, root only; and the tenant list's
"behind the head" filter. The live side (frames moving the bar) is tests/e2e/test_browser_upgrades.py."""

import datetime
import re

import pytest
from django.test import Client

from jobs.models import Job
from tenants import upgrade_services
from tenants.admin_upgrades import eta
from tenants.models import Role, Upgrade, UpgradeStatus, User
from tenants.provisioning.template import migration_fingerprint
from tenants.tasks import upgrade_subject
from tests.support.factories import TenantFactory
from tests.support.upgrades import isolated_tenant, make_upgrade
from tests.support.users import make_root_user

U = UpgradeStatus
LIST = "/admin/tenants/upgrade/"
START = f"{LIST}start/"
TENANTS = "/admin/tenants/tenant/"


@pytest.fixture
def admin(db):
    client = Client()
    client.force_login(make_root_user("ops@diquis.test"))
    return client


def page_of(upgrade):
    return f"{LIST}{upgrade.pk}/change/"


def shown(response):
    """The messages the page a redirect was followed to shows."""
    return [str(m) for m in response.context["messages"]]


def halfway(**fields):
    """Running for 10 minutes: of 6 tenant databases, 1 was at the head already; 2 done, 1 failed, 2 to go."""
    children = [
        ("t-a", "main", "done"),
        ("t-b", "main", "failed", "column <summary> already exists"),
        ("t-c", "pg-b", "done"),
        ("t-d", "pg-b", "running"),
        ("t-e", "pg-b", "pending"),
    ]
    return make_upgrade(children, skipped=1, **fields)


def action_buttons(html):
    """The actions the page offers: its object tools that are not hidden."""
    return re.findall(r'<li data-upgrade-action="(\w+)">', html)


def test_the_list_shows_each_upgrade_with_its_status_bar_and_counts_and_a_start_button(admin):
    running = halfway()
    done = make_upgrade([("t-z", "main", "done")], status=U.SUCCEEDED, started_ago=datetime.timedelta(days=1))
    html = admin.get(LIST).content.decode()

    assert html.index(f'data-upgrade-id="{running.pk}"') < html.index(f'data-upgrade-id="{done.pk}"')  # last first
    assert f'<a href="{page_of(running)}">Upgrade {running.pk}</a>' in html
    assert re.search(r'<span class="tenant-badge tenant-badge--running" data-upgrade-status="Running">', html)
    assert 'data-upgrade-status="Succeeded"' in html
    assert '<progress max="6" value="4"' in html  # done + failed + skipped, of total
    assert re.search(r'data-count="done">2</span> done, <span data-count="failed">1</span> failed', html)
    assert f'href="{START}"' in html and "Start upgrade" in html
    assert "addlink" in html and f'href="{LIST}add/"' not in html  # no upgrade is added by hand
    assert 'name="action"' not in html  # nor deleted in bulk
    assert admin.get(f"{LIST}add/").status_code == 403


def test_an_upgrades_page_shows_its_figures_eta_servers_failures_and_the_buttons_its_status_allows(admin):
    upgrade = halfway()
    html = admin.get(page_of(upgrade)).content.decode()

    assert 'data-upgrade-status="Running"' in html
    assert f"<h2>Upgrade {upgrade.pk} to {upgrade.target}</h2>" in html
    assert '<progress max="6" value="4"' in html
    # 3 tenant databases got through in 10 minutes: the 2 left take about 7 minutes more.
    assert re.search(r"data-upgrade-eta>about 7 min left<", html)
    servers = html[html.index("data-upgrade-servers") :]
    assert re.search(r"<td>main</td><td>1</td><td>1</td><td>0</td><td>0</td>", servers)
    assert re.search(r"<td>pg-b</td><td>1</td><td>0</td><td>2</td><td>0</td>", servers)  # running counts as pending
    failures = html[html.index("data-upgrade-failures") :]
    assert re.search(
        r"<td>t-b</td><td><div class=\"tenant-error\">column &lt;summary&gt; already exists</div>", failures
    )
    assert action_buttons(html) == ["pause", "cancel"]
    assert 'data-upgrade-action="resume" hidden' in html
    assert 'name="_save"' not in html  # read-only
    assert "csrfmiddlewaretoken" in html  # the buttons post, with the token
    assert "tenants/upgrades.js" in html and "tenants/hub.js" in html


def test_the_eta_says_paused_took_or_estimating_when_no_rate_is_known(admin):
    paused = halfway(status=U.PAUSED, error="canary tenant 't-b' failed")
    html = admin.get(page_of(paused)).content.decode()
    assert "data-upgrade-eta>paused<" in html
    assert action_buttons(html) == ["resume", "cancel"]
    assert "canary tenant &#x27;t-b&#x27; failed" in html

    just_started = make_upgrade([("t-a", "main", "running")])
    html = admin.get(page_of(just_started)).content.decode()
    assert "data-upgrade-eta>estimating…<" in html

    finished = make_upgrade([("t-a", "main", "done")], status=U.SUCCEEDED, started_ago=datetime.timedelta(minutes=3))
    html = admin.get(page_of(finished)).content.decode()
    assert "data-upgrade-eta>took 3 min<" in html
    assert action_buttons(html) == []


def test_the_eta_counts_the_rate_of_this_upgrade_only(db):
    """Those skipped at the start took no time: they are not part of the rate (90 skipped, 10 done in 100 s, 100
    left: about 1000 s)."""
    upgrade = make_upgrade(
        [(f"t-{n}", "main", "done" if n < 10 else "pending") for n in range(110)],
        skipped=90,
        started_ago=datetime.timedelta(seconds=100),
    )
    counts = {"total": 200, "done": 10, "failed": 0, "skipped": 90}
    assert eta(upgrade, counts, now=upgrade.started_on + datetime.timedelta(seconds=100)) == "about 17 min left"


def test_the_figures_view_serves_the_apis_upgrade_plus_what_the_page_shows(admin):
    upgrade = halfway()
    figures = admin.get(f"{page_of(upgrade).removesuffix('change/')}figures/").json()
    assert figures["id"] == upgrade.pk and figures["status"] == "Running"
    assert (figures["total"], figures["done"], figures["failed"], figures["skipped"]) == (6, 2, 1, 1)
    assert figures["failures"] == [{"tenantId": "t-b", "error": "column <summary> already exists"}]
    assert figures["servers"]["pg-b"] == {"done": 1, "failed": 0, "pending": 2, "skipped": 0}
    assert figures["eta"] == "about 7 min left"
    assert figures["actions"] == ["pause", "cancel"]
    assert figures["finishedAt"] == "-"


def test_pause_resume_and_cancel_go_through_the_services_and_say_so(admin, root_user):
    upgrade = halfway(initiated_by=root_user.pk)
    url = page_of(upgrade).removesuffix("change/")

    response = admin.post(f"{url}pause/", follow=True)
    assert response.redirect_chain == [(page_of(upgrade), 302)]
    assert shown(response) == ["Upgrade paused. The tenants being upgraded finish first."]
    upgrade.refresh_from_db()
    assert (upgrade.status, upgrade.error) == (U.PAUSED, "paused by a root admin")
    assert action_buttons(response.content.decode()) == ["resume", "cancel"]

    response = admin.post(f"{url}resume/", follow=True)
    assert shown(response) == ["Upgrade resumed."]
    upgrade.refresh_from_db()
    assert upgrade.status == U.RUNNING
    assert upgrade.children.get(tenant_id="t-b").status == "pending"  # the failed one is tried again
    assert Job.objects.filter(subject=upgrade_subject(upgrade.pk)).count() == 1  # a new run of the parent job

    response = admin.post(f"{url}cancel/", follow=True)
    assert shown(response) == ["Upgrade cancelled. The tenants being upgraded finish first."]
    upgrade.refresh_from_db()
    assert upgrade.status == U.CANCELLED and upgrade.finished_on is not None
    assert action_buttons(response.content.decode()) == []


def test_an_action_the_status_refuses_is_an_error_message_not_a_500(admin):
    finished = make_upgrade([("t-a", "main", "done")], status=U.SUCCEEDED)
    running = halfway()
    for upgrade, action, said in [
        (finished, "pause", f"Upgrade {finished.pk} is Succeeded: it cannot be paused"),
        (finished, "cancel", f"Upgrade {finished.pk} is Succeeded: it cannot be cancelled"),
        (running, "resume", f"Upgrade {running.pk} is Running: it cannot be resumed"),
    ]:
        response = admin.post(f"{page_of(upgrade).removesuffix('change/')}{action}/", follow=True)
        assert response.status_code == 200
        assert said in response.content.decode()
        assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert Upgrade.objects.get(pk=finished.pk).status == U.SUCCEEDED
    assert Upgrade.objects.get(pk=running.pk).status == U.RUNNING


def test_a_get_on_an_action_changes_nothing_and_an_unknown_upgrade_is_404(admin):
    upgrade = halfway()
    response = admin.get(f"{page_of(upgrade).removesuffix('change/')}pause/")
    assert response.status_code == 302
    assert Upgrade.objects.get(pk=upgrade.pk).status == U.RUNNING
    for path in ["999999/change/", "999999/figures/", "abc/figures/", f"{10**30}/figures/", "999999/pause/"]:
        assert admin.post(f"{LIST}{path}").status_code == 404, path
        assert admin.get(f"{LIST}{path}").status_code == 404, path


def test_the_start_form_offers_the_services_defaults_and_says_who_is_behind(admin):
    isolated_tenant("behind-a")
    isolated_tenant("at-head", fingerprint=migration_fingerprint())
    TenantFactory(id="shared-one")
    html = admin.get(START).content.decode()
    assert re.search(r'name="canary" value="5"', html)
    assert re.search(r'name="parallel" value="4"', html)
    assert re.search(r'name="max_failures" value="0"', html)
    assert migration_fingerprint() in html
    assert re.search(r"<strong data-behind>1</strong> of 2</a>", html)
    assert f'href="{TENANTS}?schema=behind"' in html


def test_starting_an_upgrade_from_the_form_calls_the_service_and_opens_its_page(admin):
    for tenant_id in ["s-a", "s-b", "s-c"]:
        isolated_tenant(tenant_id, fingerprint="an-old-head")
    response = admin.post(START, {"canary": "1", "parallel": "2", "max_failures": "1"}, follow=True)
    upgrade = Upgrade.objects.get()
    assert response.redirect_chain == [(page_of(upgrade), 302)]
    assert shown(response) == [upgrade_services.UPGRADE_INITIATED]
    assert (upgrade.status, upgrade.canary, upgrade.parallel, upgrade.max_failures) == (U.PENDING, 1, 2, 1)
    assert upgrade.initiated_by == User.objects.get(email="ops@diquis.test").pk
    assert sorted(upgrade.children.values_list("tenant_id", flat=True)) == ["s-a", "s-b", "s-c"]
    assert Job.objects.filter(subject=upgrade_subject(upgrade.pk)).count() == 1

    response = admin.post(START, {"canary": "5", "parallel": "4", "max_failures": "0"}, follow=True)  # one is open
    assert response.redirect_chain == [(LIST, 302)]
    assert shown(response) == [f"Upgrade {upgrade.pk} is Pending: finish, resume or cancel it first"]
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert Upgrade.objects.count() == 1
    html = admin.get(START).content.decode()
    assert f'<a href="{page_of(upgrade)}">Upgrade {upgrade.pk}</a> is\n      Pending' in html


def test_nothing_behind_succeeds_at_once_and_bad_options_are_form_errors(admin, settings):
    isolated_tenant("at-head", fingerprint=migration_fingerprint())
    for options, field in [
        ({"parallel": "0"}, "parallel"),
        ({"parallel": "33"}, "parallel"),
        ({"canary": "-1"}, "canary"),
    ]:
        response = admin.post(START, {"canary": "5", "parallel": "4", "max_failures": "0", **options})
        assert response.status_code == 200, options
        assert field in response.context["form"].errors, options
    assert not Upgrade.objects.exists()

    response = admin.post(START, {"canary": "5", "parallel": "4", "max_failures": "0"}, follow=True)
    upgrade = Upgrade.objects.get()
    assert upgrade.status == U.SUCCEEDED and (upgrade.total, upgrade.skipped) == (1, 1)
    assert shown(response) == [f"Every tenant database is at the head already: upgrade {upgrade.pk} had nothing to do."]


def test_users_who_are_not_root_get_the_login_page_and_change_nothing(db):
    upgrade = halfway()
    client = Client()
    client.force_login(User.objects.create_user("basic@diquis.test", "Basic-Pass-123!", roles=[Role.BASIC]))
    url = page_of(upgrade).removesuffix("change/")
    for method, path in [
        ("get", LIST),
        ("get", page_of(upgrade)),
        ("get", f"{url}figures/"),
        ("get", START),
        ("post", START),
        ("post", f"{url}pause/"),
        ("post", f"{url}cancel/"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
    assert Upgrade.objects.get(pk=upgrade.pk).status == U.RUNNING
    assert Upgrade.objects.count() == 1


def test_the_tenant_list_filters_the_isolated_tenants_behind_the_head_or_at_it(admin):
    isolated_tenant("old-one", fingerprint="an-old-head")
    isolated_tenant("unknown-one")  # no fingerprint recorded: behind until a job looks
    isolated_tenant("new-one", fingerprint=migration_fingerprint())
    isolated_tenant("half-made", fingerprint="an-old-head", is_provisioned=False)  # its own job migrates it
    TenantFactory(id="shared-one")

    def listed(query):
        html = admin.get(TENANTS + query).content.decode()
        return set(re.findall(r'data-tenant-id="([^"]+)"', html)) - {"root"}

    assert listed("?schema=behind") == {"old-one", "unknown-one"}
    assert listed("?schema=at-head") == {"new-one"}
    assert listed("") == {"old-one", "unknown-one", "new-one", "half-made", "shared-one"}
    html = admin.get(TENANTS).content.decode()
    assert "Behind the head" in html and "At the head" in html
