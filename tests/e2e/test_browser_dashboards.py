"""Swagger UI and rq-dashboard in a real browser, served by Daphne alone with DEBUG=false: every asset
comes from the app itself (no CDN, no second server)."""

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support import live
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_on_failure
from tests.support.users import ROOT_PASSWORD, make_root_user


@pytest.fixture
def web(transactional_db, tmp_path):
    process = live.start_web(tmp_path)
    try:
        yield process.url
    finally:
        process.stop()


@pytest.fixture
def browser_page(web):
    make_root_user("ops@diquis.test")  # before the browser: Playwright's loop would refuse the ORM
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(30_000)
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: print(f"page error: {error}"))
        try:
            yield page, requests
        finally:
            browser.close()


def test_swagger_ui_renders_every_operation_from_local_assets(web, browser_page, tmp_path):
    page, requests = browser_page
    with screenshot_on_failure(page, tmp_path):
        page.goto(f"{web}/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Diquis API")
        expect(page.locator(".opblock-summary-path", has_text="/api/tenants/{tenant_id}/retry")).to_have_count(1)
        assert page.locator(".opblock").count() >= 18
        page.screenshot(path=tmp_path / "swagger.png")
    assert requests and all(url.startswith(web) for url in requests), [u for u in requests if not u.startswith(web)]


def test_rq_dashboard_renders_for_a_signed_in_root(web, browser_page, tmp_path):
    page, requests = browser_page
    with screenshot_on_failure(page, tmp_path):
        page.goto(f"{web}/rq/")
        expect(page).to_have_url(f"{web}/admin/login/?next=/rq/")
        page.fill("#id_username", "ops@diquis.test")
        page.fill("#id_password", ROOT_PASSWORD)
        page.click("input[type=submit]")
        expect(page).to_have_url(f"{web}/rq/")
        expect(page.locator("#queues")).to_be_visible()
        expect(page.locator("#queues tbody")).not_to_contain_text("Loading")  # its JSON came through the mount
        page.goto(f"{web}/rq/0/view/workers")
        expect(page.locator("#workers tbody")).not_to_contain_text("Loading")
        page.screenshot(path=tmp_path / "rq.png")
    assert all(url.startswith(web) for url in requests), [u for u in requests if not u.startswith(web)]
