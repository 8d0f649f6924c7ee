"""The admin's tenant pages in a real browser (Debian's chromium, driven by Playwright), against the real
stack: Daphne serving the admin, its static files and the websocket, and an RQ worker running the jobs.

The pages must change by themselves, with no reload: each test marks the window object and checks at the
end that the mark is still there.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tenants.provisioning.steps import CREATE_ADMIN_USER
from tests.support import fault_injection
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_on_failure
from tests.support.screenshots import save_for_readme
from tests.support.users import ROOT_PASSWORD, make_root_user

TENANT_PASSWORD = "Tenant-Admin-Pass-9!"
JOB_TIMEOUT = 90_000  # ms: an isolated tenant clones a database; the machine is shared
RED = "rgb(220, 53, 69)"
JOB_LOGGER = re.compile(r" (WARNING|ERROR) (jobs|tenants)\.")
JOB_FIELDS = re.compile(r" job=[0-9a-f-]{36} operation=provision_tenant subject=tenant:broken-academy ")


@pytest.fixture
def root(live_stack):
    """The admin who signs in. Made before the browser starts: Playwright's sync API runs an event loop in
    this thread, and Django refuses ORM calls from there."""
    return make_root_user("ops@diquis.test")


@pytest.fixture
def page(root):
    """A fresh browser page (after the stack and the root user exist)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium package is required (apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        # The browser's console and script errors end up in the test's output when it fails.
        page.on("console", lambda message: print(f"console.{message.type}: {message.text}"))
        page.on("pageerror", lambda error: print(f"page error: {error}"))
        try:
            yield page
        finally:
            context.close()
            browser.close()


def write_fault(path, tenant_id, action, message=None):
    fault_injection.write_fault(path, CREATE_ADMIN_USER, tenant_id, action=action, message=message)


def sign_in(page, stack, email):
    page.goto(f"{stack.url}/admin/login/?next=/admin/tenants/tenant/")
    page.fill("#id_username", email)
    page.fill("#id_password", ROOT_PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/tenants/tenant/$"))


def create_through_the_form(page, stack, tenant_id, name, *, isolated=True):
    page.goto(f"{stack.url}/admin/tenants/tenant/add/")
    page.fill("#id_id", tenant_id)
    page.fill("#id_name", name)
    page.fill("#id_admin_email", f"admin@{tenant_id}.test")
    page.fill("#id_password", TENANT_PASSWORD)
    if isolated:
        page.check("#id_has_isolated_database")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Tenant creation initiated")


def badge_of(page, tenant_id):
    return page.locator(f'.tenant-badge[data-tenant-id="{tenant_id}"]')


def mark_window(page):
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page):
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def test_an_isolated_tenant_goes_from_pending_to_active_live_with_progress_and_a_toast(
    live_stack, tenant_databases, root, page, tmp_path
):
    stack = live_stack
    stack.workers.pop().stop()  # no worker yet: the new tenant waits, Pending
    faults = tmp_path / "faults.json"
    write_fault(faults, "live-academy", "hold")  # hold the last step, so the step in flight can be seen

    with screenshot_on_failure(page, tmp_path):
        sign_in(page, stack, root.email)
        create_through_the_form(page, stack, "live-academy", "Live Academy")
        badge = badge_of(page, "live-academy")
        expect(badge).to_have_attribute("data-status", "Pending")
        expect(badge).to_have_class(re.compile(r"tenant-badge--pending"))
        expect(page.locator(".tenant-live--on")).to_be_attached()  # the websocket is open
        mark_window(page)

        stack.add_worker(DIQUIS_FAULTS_FILE=str(faults))
        expect(badge).to_have_attribute("data-status", "Provisioning", timeout=JOB_TIMEOUT)
        expect(badge.locator(".tenant-spinner")).to_be_visible()
        expect(page.locator('[data-progress-for="live-academy"]')).to_contain_text(
            "Step 3 of 3: Creating admin user", timeout=JOB_TIMEOUT
        )
        page.screenshot(path=tmp_path / "provisioning.png", full_page=True)

        faults.unlink()
        expect(badge).to_have_attribute("data-status", "Active", timeout=JOB_TIMEOUT)
        expect(badge).to_have_class(re.compile(r"tenant-badge--active"))
        toast = page.locator(".tenant-toast--success")
        expect(toast).to_contain_text("Tenant 'Live Academy' has been successfully created and provisioned.")
        expect(page.locator('[data-progress-for="live-academy"]')).to_be_empty()
        row = page.locator("#result_list tbody tr", has=badge)
        expect(row.locator("td.field-isolated img")).to_have_attribute("alt", "True")
        page.screenshot(path=tmp_path / "active.png", full_page=True)
        save_for_readme(page, "tenant-list")  # the badge, the toast (`make screenshots`)
        assert_not_reloaded(page)


def test_a_broken_tenant_shows_its_error_in_red_and_retry_brings_it_back_live(
    live_stack, tenant_databases, root, page, tmp_path
):
    stack = live_stack
    faults = tmp_path / "faults.json"
    write_fault(faults, "broken-academy", "fail", "Injected failure")
    stack.workers.pop().stop()
    stack.add_worker(DIQUIS_FAULTS_FILE=str(faults))

    with screenshot_on_failure(page, tmp_path):
        sign_in(page, stack, root.email)
        create_through_the_form(page, stack, "broken-academy", "Broken Academy")
        mark_window(page)
        badge = badge_of(page, "broken-academy")
        expect(badge).to_have_attribute("data-status", "Failed", timeout=JOB_TIMEOUT)
        expect(badge).to_have_class(re.compile(r"tenant-badge--failed"))
        row = page.locator("#result_list tbody tr", has=badge)
        error = row.locator(".tenant-error")
        expect(error).to_have_text("Injected failure")
        expect(error).to_have_css("color", RED)
        expect(page.locator(".tenant-toast--error")).to_contain_text("Tenant creation failed: Injected failure")
        assert_not_reloaded(page)
        page.screenshot(path=tmp_path / "failed.png", full_page=True)

        # Structured logs: what the job's own code logged names the job, its operation and its tenant.
        job_lines = [line for line in stack.workers[-1].output().splitlines() if JOB_LOGGER.search(line)]
        assert job_lines, "the failing attempts logged nothing"
        for line in job_lines:
            assert JOB_FIELDS.search(line), line

        # The tenant's page: the error, every attempt with its error, and the Retry button.
        row.locator("th a").click()
        expect(page.locator(".field-error .tenant-error")).to_have_text("Injected failure")
        history = page.locator(".attempt-history")
        expect(history.locator("tr.attempt--failed")).to_have_count(3)
        expect(history.locator("tr.attempt--failed .tenant-error").first).to_have_text("Injected failure")
        expect(history.locator("tr.attempt--failed details summary").first).to_have_text("Traceback")
        rq_link = history.locator("tr.attempt--failed td:nth-child(2) a").first
        expect(rq_link).to_have_attribute("href", re.compile(r"^/rq/0/view/job/"))
        expect(page.locator("input[name=_save]")).to_have_count(0)  # a failed creation is not editable

        write_fault(faults, "broken-academy", "hold")  # the retry waits at its last step, to be watched
        page.locator("button.tenant-action[data-action=retry]").click()
        expect(page.locator(".messagelist")).to_contain_text("Retry initiated for broken-academy")
        mark_window(page)
        badge = badge_of(page, "broken-academy")
        expect(badge).to_have_attribute("data-status", "Provisioning", timeout=JOB_TIMEOUT)
        expect(page.locator("button.tenant-action[data-action=retry]")).to_have_count(0)

        faults.unlink()
        expect(badge).to_have_attribute("data-status", "Active", timeout=JOB_TIMEOUT)
        expect(page.locator(".tenant-toast--success")).to_contain_text(
            "Tenant 'Broken Academy' has been successfully created and provisioned."
        )
        expect(history.locator("tr.attempt--succeeded")).to_have_count(1)
        expect(page.locator(".field-error .tenant-error")).to_have_text("")
        expect(page.locator("input[name=_save]")).to_have_count(1)  # now it can be edited
        expect(page.locator("#content > h1")).to_contain_text("Change tenant")
        page.screenshot(path=tmp_path / "retried.png", full_page=True)
        history.scroll_into_view_if_needed()
        save_for_readme(page, "attempt-history")  # three failed attempts, then the retry's (`make screenshots`)
        assert_not_reloaded(page)
