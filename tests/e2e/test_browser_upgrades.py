"""The admin's Upgrades pages in a real browser (Debian's chromium, driven by Playwright) against Daphne: an
upgrade's page moves its bar as the frames of the real notify path arrive (tenants.events, through the channel
layer), and the list, whose socket the test keeps closed, catches up by reading the figures every few seconds.

No job runs the upgrade: the test plays the parent job's part on the catalog (children done, progress sent, the
end recorded), which is what the pages see of it (tests/tenants/provisioning/test_rollout.py runs real ones).
"""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connections, transaction
from playwright.sync_api import expect, sync_playwright

from tenants import events
from tenants.models import Upgrade, UpgradeStatus, UpgradeTenant
from tenants.provisioning import rollout
from tests.support.browser import CHROMIUM, chromium_page, screenshot_on_failure
from tests.support.upgrades import make_upgrade
from tests.support.users import ROOT_PASSWORD, make_root_user

FRAME_TIMEOUT = 3_000  # ms: a frame, then one read of the figures (the socket-up poll is every 10 s)
POLL_TIMEOUT = 10_000  # ms: the socket-down poll is every 3 s


@pytest.fixture
def upgrade(live_stack):
    """A running upgrade of 5 tenant databases on two servers (1 more was at the head), started by the root who
    signs in. Made before the browser starts: Playwright's sync API runs an event loop in this thread, and Django
    refuses ORM calls from there (off_the_loop)."""
    live_stack.workers.pop().stop()  # nothing to run: the test is the parent job
    root = make_root_user("ops@diquis.test")
    children = [(f"t-{n}", "main" if n < 3 else "pg-b", "pending") for n in range(5)]
    return root, make_upgrade(children, skipped=1, initiated_by=root.pk)


def off_the_loop(function, *args):
    """Run ORM code in a thread of its own (see `upgrade`), its connection closed after."""

    def call():
        try:
            return function(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def advance(upgrade_id, changes):
    """What a lane does: children change status (tenant id -> (status, error)), then UpgradeProgress is sent."""
    with transaction.atomic():
        upgrade = Upgrade.objects.select_for_update().get(pk=upgrade_id)
        for tenant_id, (status, error) in changes.items():
            UpgradeTenant.objects.filter(upgrade=upgrade, tenant_id=tenant_id).update(status=status, error=error)
        events.upgrade_progress(upgrade, rollout.counts(upgrade))


def finish(upgrade_id):
    """The last lane's end: every child left is done, and the upgrade Succeeded (UpgradeFinished)."""
    with transaction.atomic():
        upgrade = Upgrade.objects.select_for_update().get(pk=upgrade_id)
        upgrade.children.exclude(status="done").update(status="done", error="")
        rollout.end(upgrade, UpgradeStatus.SUCCEEDED)


def counts_of(scope):
    return {name: scope.locator(f'[data-count="{name}"]') for name in ["done", "failed", "skipped", "total"]}


def test_the_bar_moves_as_frames_arrive_and_a_page_without_its_socket_catches_up_by_polling(
    live_stack, upgrade, tmp_path
):
    root, upgrade = upgrade
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium package is required (apt-get install chromium; .ci/run installs it)")
    url = f"{live_stack.url}/admin/tenants/upgrade/"
    with sync_playwright() as playwright, chromium_page(playwright) as page, screenshot_on_failure(page, tmp_path):
        page.on("console", lambda message: print(f"console.{message.type}: {message.text}"))
        page.on("pageerror", lambda error: print(f"page error: {error}"))
        page.goto(f"{live_stack.url}/admin/login/?next={url}{upgrade.pk}/change/")
        page.fill("#id_username", root.email)
        page.fill("#id_password", ROOT_PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("[data-upgrade-status]")).to_have_text("Running")
        expect(page.locator(".tenant-live--on")).to_be_attached()  # its websocket is open
        bar = page.locator(".upgrade-progress progress")
        expect(bar).to_have_attribute("value", "1")  # the one skipped at the start
        page.evaluate("window.__sameDocument = true")

        # The list, in a second tab whose socket closes as it opens: no frame reaches it.
        listing = page.context.new_page()
        listing.route_web_socket(re.compile(r"/hubs/notifications"), lambda socket: socket.close())
        listing.goto(url)
        row = listing.locator("#result_list tbody tr", has=listing.locator(f'[data-upgrade-id="{upgrade.pk}"]'))
        expect(counts_of(row)["done"]).to_have_text("0")
        expect(listing.locator(".tenant-live--on")).to_have_count(0)
        listing.evaluate("window.__sameDocument = true")

        off_the_loop(advance, upgrade.pk, {"t-0": ("done", ""), "t-3": ("done", ""), "t-1": ("failed", "boom <b>")})
        counts = counts_of(page)
        expect(counts["done"]).to_have_text("2", timeout=FRAME_TIMEOUT)
        expect(counts["failed"]).to_have_text("1")
        expect(bar).to_have_attribute("value", "4")
        expect(page.locator("[data-upgrade-failures] tr")).to_have_text(["t-1boom <b>"], timeout=FRAME_TIMEOUT)
        expect(page.locator("[data-upgrade-servers] tr")).to_have_text(["main1110", "pg-b1010"])
        expect(page.locator("[data-upgrade-eta]")).to_have_text(re.compile(r"^about \d+ (s|min) left$"))
        expect(counts_of(row)["done"]).to_have_text("2", timeout=POLL_TIMEOUT)  # the list, by polling
        expect(row.locator(".upgrade-progress progress")).to_have_attribute("value", "4")

        # The buttons post (CSRF) to the services: paused, then resumed.
        page.locator("button[data-action=pause]").click()
        expect(page.locator(".messagelist")).to_contain_text("Upgrade paused")
        expect(page.locator("[data-upgrade-status]")).to_have_text("Paused")
        expect(page.locator("[data-upgrade-eta]")).to_have_text("paused")
        expect(page.locator("button[data-action=pause]")).to_be_hidden()
        page.locator("button[data-action=resume]").click()
        expect(page.locator(".messagelist")).to_contain_text("Upgrade resumed")
        expect(page.locator(".tenant-live--on")).to_be_attached()
        expect(counts_of(page)["failed"]).to_have_text("0")  # the failed one is tried again
        page.evaluate("window.__sameDocument = true")

        off_the_loop(finish, upgrade.pk)
        expect(page.locator(".tenant-toast--success")).to_contain_text(
            f"Upgrade {upgrade.pk} finished: 5 tenant database(s) upgraded, 1 skipped.", timeout=FRAME_TIMEOUT
        )
        expect(page.locator("[data-upgrade-status]")).to_have_text("Succeeded", timeout=FRAME_TIMEOUT)
        expect(page.locator("[data-upgrade-action]")).to_have_count(3)
        for action in ["pause", "resume", "cancel"]:
            expect(page.locator(f"button[data-action={action}]")).to_be_hidden()
        expect(page.locator("[data-upgrade-eta]")).to_have_text(re.compile(r"^took "))
        expect(page.locator('[data-upgrade-field="finishedAt"]')).not_to_have_text("-")
        expect(bar).to_have_attribute("value", "6")
        expect(row.locator("[data-upgrade-status]")).to_have_text("Succeeded", timeout=POLL_TIMEOUT)
        page.screenshot(path=tmp_path / "succeeded.png", full_page=True)
        assert page.evaluate("window.__sameDocument === true"), "the upgrade's page was reloaded"
        assert listing.evaluate("window.__sameDocument === true"), "the list was reloaded"
