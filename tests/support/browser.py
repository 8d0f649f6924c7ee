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
