"""The tenant admin without a browser: columns, badges, what is editable, and actions that only enqueue."""

import datetime
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from jobs.models import Attempt, Job
from tenants import tasks
from tenants.models import DatabaseServer, ProvisioningStatus, ServerStatus, Tenant, User
from tenants.services import subject_for
from tests.support.factories import TenantFactory
from tests.support.users import make_root_user

S = ProvisioningStatus
LIST = "/admin/tenants/tenant/"


@pytest.fixture
def admin(db):
    client = Client()
    client.force_login(make_root_user())
    return client


def change_url(tenant_id):
    return f"{LIST}{tenant_id}/change/"


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def jobs_of(tenant_id):
    return list(Job.objects.filter(subject=subject_for(tenant_id)).order_by("created_at"))


def failed_creation(tenant_id="broken"):
    """A tenant whose creation failed for good, with its failed durable job (what retry re-runs)."""
    tenant = TenantFactory(id=tenant_id, status=S.FAILED, is_provisioned=False, provisioning_error="Disk full")
    Job.objects.create(
        task=tasks.provision_tenant.durable_task_name,
        kwargs={"tenant_id": tenant_id, "initiated_by": None},
        subject=subject_for(tenant_id),
        status=Job.Status.FAILED,
        attempts=3,
        max_attempts=3,
    )
    return tenant


def test_the_list_shows_badges_errors_and_yes_no_columns_newest_first(admin):
    now = timezone.now()
    for n, status in enumerate(S.values):
        TenantFactory(id=f"t-{status.lower()}", status=status)
        Tenant.objects.filter(pk=f"t-{status.lower()}").update(created_on=now + datetime.timedelta(minutes=n))
    Tenant.objects.filter(pk="t-failed").update(provisioning_error="Database <b>gone</b>")
    html = admin.get(LIST).content.decode()

    table = html[html.index('id="result_list"') :]
    headers = re.findall(r'<th scope="col"[^>]*>.*?<a [^>]*>([^<]+)</a>', table, re.S)
    assert headers[:8] == ["Id", "Name", "Status", "Active", "Isolated", "Server", "Created", "Last attempt"]
    for status in S.values:
        badge = re.search(rf'<span class="tenant-badge tenant-badge--{status.lower()}"[^>]*>(.*?)</span>', html)
        assert badge, status
        spins = "tenant-spinner" in badge.group(1)
        assert spins == (status in {"Provisioning", "Updating", "Deleting", "Moving"}), status
    assert '<div class="tenant-error">Database &lt;b&gt;gone&lt;/b&gt;</div>' in html  # red, and escaped
    order = re.findall(r'data-tenant-id="([^"]+)"', html)
    assert order.index("t-deleting") < order.index("t-pending")  # newest first
    assert "icon-yes.svg" in html and "icon-no.svg" in html


def test_the_list_searches_by_id_and_name_and_filters_by_status(admin):
    TenantFactory(id="acme", name="Acme Corp")
    TenantFactory(id="globex", name="Globex Academy", status=S.FAILED, is_provisioned=False)
    found = lambda query: set(re.findall(r'data-tenant-id="([^"]+)"', admin.get(LIST + query).content.decode()))  # noqa: E731
    assert found("?q=acme") == {"acme"}
    assert found("?q=Academy") == {"globex"}
    assert found("?status__exact=Failed") == {"globex"}


@pytest.mark.parametrize("status", [S.PENDING, S.PROVISIONING, S.UPDATING, S.DELETING])
def test_editing_is_not_offered_while_a_job_is_in_flight(admin, status):
    TenantFactory(id="busy", status=status)
    page = admin.get(change_url("busy"))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    refused = admin.post(change_url("busy"), {"name": "Renamed", "is_active": "on"})
    assert refused.status_code == 403
    assert Tenant.objects.get(pk="busy").name != "Renamed"
    assert jobs_of("busy") == []


def test_editing_is_not_offered_for_root(admin):
    page = admin.get(change_url("root")).content.decode()
    assert 'name="_save"' not in page
    assert 'data-action="delete"' not in page


def test_an_active_tenant_is_edited_through_the_update_job(admin):
    TenantFactory(id="acme", name="Acme")
    page = admin.get(change_url("acme")).content.decode()
    assert 'name="_save"' in page and 'name="_addanother"' not in page
    response = admin.post(change_url("acme"), {"name": "Acme Two", "is_active": ""})
    assert response.status_code == 302
    assert messages_of(response) == ["Tenant update initiated for acme. It will be updated in the background."]
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.status, tenant.name, tenant.is_active) == (S.UPDATING, "Acme", True)  # the job changes it
    [job] = jobs_of("acme")
    assert (job.task, job.kwargs["name"], job.kwargs["is_active"]) == (
        tasks.apply_tenant_update.durable_task_name,
        "Acme Two",
        False,
    )


def test_the_creation_form_calls_the_service_and_leaves_the_work_to_the_job(admin):
    response = admin.post(
        f"{LIST}add/",
        {
            "id": "demo-academy",
            "name": "Demo Academy",
            "admin_email": "Admin@Demo.test",
            "password": "Tenant-Admin-Pass-9!",
            "has_isolated_database": "on",
        },
    )
    assert response.status_code == 302 and response["Location"] == LIST
    assert messages_of(response) == ["Tenant creation initiated. The tenant will be provisioned in the background."]
    tenant = Tenant.objects.get(pk="demo-academy")
    assert (tenant.status, tenant.has_isolated_database, tenant.admin_email) == (S.PENDING, True, "admin@demo.test")
    assert tenant.database_name is None and not User.objects.filter(tenant_id="demo-academy").exists()
    [job] = jobs_of("demo-academy")
    assert job.task == tasks.provision_tenant.durable_task_name
    assert (
        "Tenant-Admin-Pass-9!" not in str(job.kwargs) and "Tenant-Admin-Pass-9!" not in tenant.encrypted_admin_password
    )


def test_the_creation_form_refuses_what_the_api_refuses(admin):
    TenantFactory(id="taken")
    body = {"id": "taken", "name": "X", "admin_email": "a@b.test", "password": "Tenant-Admin-Pass-9!"}
    errors = admin.post(f"{LIST}add/", body).context["adminform"].form.errors
    assert errors["id"] == ["Tenant already exists"]
    errors = admin.post(f"{LIST}add/", {**body, "id": "root"}).context["adminform"].form.errors
    assert "id" in errors
    errors = admin.post(f"{LIST}add/", {**body, "id": "fresh", "password": "123"}).context["adminform"].form.errors
    assert errors["password"]
    assert not Tenant.objects.filter(pk="fresh").exists() and jobs_of("fresh") == []


def test_the_creation_form_puts_an_isolated_tenant_on_the_server_asked_for(admin):
    DatabaseServer.objects.create(name="pg-2", host="10.0.0.5", weight=1)
    DatabaseServer.objects.create(name="pg-3", host="10.0.0.6", status=ServerStatus.DRAINING)
    body = {"id": "far", "name": "Far", "admin_email": "a@far.test", "password": "Tenant-Admin-Pass-9!"}
    form = admin.get(f"{LIST}add/").context["adminform"].form
    assert [s.name for s in form.fields["database_server"].queryset] == ["main", "pg-2"]  # Active ones only
    errors = admin.post(f"{LIST}add/", {**body, "database_server": "pg-2"}).context["adminform"].form.errors
    assert errors["database_server"] == ["A shared tenant has no database server of its own."]
    response = admin.post(f"{LIST}add/", {**body, "database_server": "pg-2", "has_isolated_database": "on"})
    assert response.status_code == 302
    assert Tenant.objects.get(pk="far").database_server_id == "pg-2"
    assert "pg-2" in admin.get(LIST).content.decode()  # its column in the list


def test_retry_runs_again_only_failed_tenants(admin):
    failed_creation("broken")
    TenantFactory(id="fine")
    response = admin.post(LIST, {"action": "retry", "_selected_action": ["broken", "fine"]})
    assert response.status_code == 302
    said = messages_of(response)
    assert said[0] == "Retry initiated for broken. The failed operation will run again in the background."
    assert said[1].startswith("fine: Only a failed tenant can be retried")
    assert Tenant.objects.get(pk="broken").status == S.PENDING
    assert [j.status for j in jobs_of("broken")] == [Job.Status.QUEUED]
    assert Tenant.objects.get(pk="fine").status == S.ACTIVE


def test_activate_and_deactivate_enqueue_updates(admin):
    TenantFactory(id="on", is_active=True)
    TenantFactory(id="off", is_active=False)
    admin.post(LIST, {"action": "deactivate", "_selected_action": ["on"]})
    admin.post(LIST, {"action": "activate", "_selected_action": ["off"]})
    assert [j.kwargs["is_active"] for j in jobs_of("on")] == [False]
    assert [j.kwargs["is_active"] for j in jobs_of("off")] == [True]
    assert set(Tenant.objects.filter(pk__in=["on", "off"]).values_list("status", flat=True)) == {S.UPDATING}


def test_delete_asks_first_then_enqueues_the_deletion(admin):
    TenantFactory(id="doomed")
    confirm = admin.post(LIST, {"action": "delete_in_background", "_selected_action": ["doomed"]})
    assert confirm.status_code == 200
    assert b"will be deleted in the background" in confirm.content
    assert Tenant.objects.get(pk="doomed").status == S.ACTIVE and jobs_of("doomed") == []
    done = admin.post(LIST, {"action": "delete_in_background", "_selected_action": ["doomed"], "confirmed": "yes"})
    assert messages_of(done) == ["Tenant deletion initiated for doomed. It will be removed in the background."]
    assert Tenant.objects.get(pk="doomed").status == S.DELETING
    assert [j.task for j in jobs_of("doomed")] == [tasks.deprovision_tenant.durable_task_name]


def test_root_cannot_be_deleted_or_retried_from_the_list(admin):
    response = admin.post(
        LIST, {"action": "delete_in_background", "_selected_action": ["root"], "confirmed": "yes"}, follow=True
    )
    assert "root: Cannot delete root tenant" in [str(m) for m in response.context["messages"]]
    assert Tenant.objects.get(pk="root").status == S.ACTIVE


def test_the_change_page_offers_the_actions_its_state_allows(admin):
    failed_creation("broken")
    TenantFactory(id="acme", is_active=True)
    TenantFactory(id="busy", status=S.PROVISIONING)
    actions = lambda tenant_id: re.findall(r'data-action="(\w+)"', admin.get(change_url(tenant_id)).content.decode())  # noqa: E731
    assert actions("broken") == ["retry", "delete"]
    assert actions("acme") == ["deactivate", "delete"]
    assert actions("busy") == []


def test_the_change_page_buttons_post_to_the_services_and_get_changes_nothing(admin):
    failed_creation("broken")
    assert admin.get(f"{LIST}broken/retry/").status_code == 302
    assert Tenant.objects.get(pk="broken").status == S.FAILED
    response = admin.post(f"{LIST}broken/retry/")
    assert response["Location"] == change_url("broken")
    assert Tenant.objects.get(pk="broken").status == S.PENDING
    conflict = admin.post(f"{LIST}broken/retry/")
    assert messages_of(conflict)[-1].startswith("broken: Only a failed tenant can be retried")
    assert admin.get(f"{LIST}broken/delete/").status_code == 200  # its confirmation page


def test_the_attempt_history_shows_every_attempt_with_link_steps_error_and_traceback(admin):
    tenant = failed_creation("broken")
    job = Job.objects.get(subject=subject_for(tenant.pk))
    start = timezone.now()
    for number, outcome in [(1, Attempt.Outcome.FAILED), (2, Attempt.Outcome.SUCCEEDED)]:
        Attempt.objects.create(
            job=job,
            number=number,
            rq_job_id=f"diquis-{job.pk}-{number}",
            worker="worker-1",
            started_at=start,
            heartbeat_at=start,
            ended_at=start + datetime.timedelta(seconds=1.5),
            outcome=outcome,
            steps=[{"name": "Creating database", "seconds": 0.25}, {"name": "Creating admin user", "seconds": 0.5}],
            error="Injected failure" if outcome == Attempt.Outcome.FAILED else "",
            traceback="Traceback (most recent call last):\n  InjectedFault"
            if outcome == Attempt.Outcome.FAILED
            else "",
        )
    html = admin.get(change_url("broken")).content.decode()
    history = html[html.index('data-live="attempt-history"') :]
    assert history.count('<tr class="attempt attempt--') == 2
    assert f'href="/rq/0/view/job/diquis-{job.pk}-1"' in history
    assert "Creating database: 0.250 s" in history and "Creating admin user: 0.500 s" in history
    assert "1.500 s" in history
    assert '<div class="tenant-error">Injected failure</div>' in history
    assert "<summary>Traceback</summary>" in history and "InjectedFault" in history


def test_the_jobs_admin_is_read_only(admin):
    job = failed_creation("broken") and Job.objects.get(subject=subject_for("broken"))
    assert admin.get("/admin/jobs/job/").status_code == 200
    page = admin.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert admin.get("/admin/jobs/job/add/").status_code == 403
    assert admin.post(f"/admin/jobs/job/{job.pk}/delete/").status_code == 403
    assert admin.get("/admin/jobs/attempt/").status_code == 200


def test_the_admin_is_for_root_users_only(db):
    client = Client()
    client.force_login(User.objects.create_user("basic@diquis.test", "Basic-Pass-123!", roles=["basic"]))
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert (
        Client().post("/admin/login/", {"username": "basic@diquis.test", "password": "Basic-Pass-123!"}).status_code
        == 200
    )
