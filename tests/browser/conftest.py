"""Browser fixtures: Debian's chromium via Playwright (the live server is in tests/conftest.py).

Chromium is /usr/bin/chromium from Debian (`scripts/ensure_chromium.sh`, run by `make test`);
`playwright install` is never used. Without it the browser tests skip, or fail when
PARTYPOINTS_REQUIRE_BROWSER=1 (CI). Every page is a phone in zh-CN and leaves a screenshot in
artifacts/screenshots/<test name>.png, pass or fail.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}
# Every URL that is not on this machine; local requests are not routed, so they cost nothing extra.
_NOT_LOCAL = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium, shared by the browser tests.

    Package scope rather than session: while Playwright's sync API is started, its event loop is
    marked running in the main thread, and asyncio.run() there fails; stopping it when the browser
    tests are done keeps the rest of the suite unaffected.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh as root (apt chromium)"
        if os.environ.get("PARTYPOINTS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PARTYPOINTS_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A phone-sized zh-CN page; only 127.0.0.1 is reachable (no CDN, no internet).

    After the test, pass or fail, the page is saved to artifacts/screenshots/<test name>.png.
    """
    context = browser.new_context(**PHONE)
    # Requests elsewhere (e.g. Swagger UI's CDN) would hang until they time out: refuse them.
    context.route(_NOT_LOCAL, _refuse)
    page = context.new_page()
    try:
        yield page
    finally:
        _save_screenshot(page, request)
        context.close()


def _refuse(route: Route) -> None:
    route.abort("blockedbyclient")


def _save_screenshot(page: Page, request: pytest.FixtureRequest) -> None:
    directory = Path(request.config.rootpath) / "artifacts" / "screenshots"
    name = re.sub(r"[^\w.\-\[\]]+", "_", request.node.name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=directory / f"{name}.png", full_page=True)
    except Exception as exc:  # a crashed page must not hide the test's own outcome
        warnings.warn(f"no screenshot for {request.node.nodeid}: {exc}", stacklevel=1)
