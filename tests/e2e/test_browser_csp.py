"""Security finding 10 of issue 18: no Content-Security-Policy anywhere. Before: no page carried the header.
Now every response does (django-csp), and the pages a root uses work under it: each is loaded in Debian's
chromium, does what it is for, and the browser reports no violation of the policy.
"""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import CHROMIUM, chromium_page, screenshot_on_failure
from tests.support.users import ROOT_PASSWORD, make_root_user

PAGES_ANONYMOUS = ["/admin/login/", "/api/docs/"]


@pytest.fixture
def browser(live_stack):
    make_root_user("csp@diquis.test")  # before Playwright's event loop, which refuses the ORM
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium package is required (apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as playwright, chromium_page(playwright) as page:
        violations = []
        page.on("console", lambda message: _keep_violation(violations, f"{page.url}: {message.text}"))
        # Chromium also raises the DOM event for each violation; it says which directive and what was blocked.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )
        yield page, violations


def _keep_violation(violations, text):
    if "Content Security Policy" in text or "CSP violation" in text:
        violations.append(text)


def test_every_response_carries_the_policy(live_stack):
    for path in [*PAGES_ANONYMOUS, "/api/users/me", "/health", "/rq/"]:
        policy = httpx.get(f"{live_stack.url}{path}").headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "object-src 'none'" in policy, path
        assert "unsafe" not in policy, path  # rq-dashboard's exception is for its own pages, shown to root only


def test_the_admin_swagger_ui_and_rq_dashboard_work_with_no_violation(live_stack, browser, tmp_path):
    page, violations = browser
    url = live_stack.url
    with screenshot_on_failure(page, tmp_path):
        page.goto(f"{url}/api/docs/")
        expect(page.locator(".opblock-summary-path", has_text="/api/tenants/{tenant_id}/retry")).to_have_count(1)

        page.goto(f"{url}/admin/login/?next=/admin/tenants/tenant/")
        page.fill("#id_username", "csp@diquis.test")
        page.fill("#id_password", ROOT_PASSWORD)
        page.click("input[type=submit]")
        expect(page).to_have_url(f"{url}/admin/tenants/tenant/")
        expect(page.locator(".tenant-live--on")).to_have_count(1)  # live.js opened its socket (connect-src)
        for path in [
            "/admin/",
            "/admin/tenants/tenant/add/",
            "/admin/tenants/tenant/root/change/",
            "/admin/jobs/",
            "/admin/tenants/upgrade/",
            "/admin/tenants/upgrade/start/",
        ]:
            page.goto(f"{url}{path}")
            expect(page.locator("#content")).to_be_visible()

        page.goto(f"{url}/rq/")
        expect(page.locator("#queues tbody")).not_to_contain_text("Loading")  # its scripts ran
        page.goto(f"{url}/rq/0/view/workers")
        expect(page.locator("#workers tbody")).not_to_contain_text("Loading")
    assert violations == [], "\n".join(violations)
