"""Debian's chromium for the browser tests (Playwright drives it; nothing downloads a browser)."""

import contextlib

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def screenshot_on_failure(page, tmp_path):
    try:
        yield
    except BaseException:
        shot = tmp_path / "failure.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=shot, full_page=True)
            print(f"screenshot of the failure: {shot}")
        raise


@contextlib.contextmanager
def chromium_page(playwright):
    """A fresh page of Debian's chromium at the suite's window size and timeout; closed on the way out."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
        browser.close()
