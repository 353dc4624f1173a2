"""Browser fixtures: the app served by uvicorn on a free port, and Debian's chromium via Playwright.

Chromium is /usr/bin/chromium from Debian (`scripts/ensure_chromium.sh`, run by `make test`);
`playwright install` is never used. Without it the browser tests skip, or fail when
PARTYPOINTS_REQUIRE_BROWSER=1 (CI). Every page is a phone in zh-CN and leaves a screenshot in
artifacts/screenshots/<test name>.png, pass or fail.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Route, sync_playwright

from app.config import Settings
from app.main import create_app

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


@pytest.fixture
def live_server(settings_env: Settings) -> Iterator[str]:
    """The app on the test's database, served by uvicorn in a thread; yields its base URL."""
    app = create_app(settings_env)
    # Bind first and hand uvicorn the socket, so no other process can take the port in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"live-server-{port}", daemon=True
    )
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, server, thread)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # a request that never ends: stop waiting for it
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
        if thread.is_alive():
            pytest.fail(f"live server on {base} did not shut down within 15 s")


def _wait_until_healthy(base: str, server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 15
    last: object = "no answer"
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail(f"live server on {base} exited during startup (see the captured log)")
        if server.started:
            try:
                response = httpx.get(f"{base}/healthz", timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
        time.sleep(0.05)
    pytest.fail(f"live server on {base} did not answer /healthz within 15 s: {last}")


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
