"""The live server seen through a real browser: a phone-sized headless chromium."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_health_and_api_docs_open_in_a_phone_browser(
    live_server: str, page: Page, tmp_path: Path
) -> None:
    response = page.goto(f"{live_server}/docs")
    assert response is not None and response.status == 200
    assert "partypoints" in page.title()
    assert page.locator("#swagger-ui").count() == 1  # Swagger UI's script is on a CDN: blocked
    assert page.evaluate("[innerWidth, devicePixelRatio, navigator.language]") == [390, 2, "zh-CN"]

    response = page.goto(f"{live_server}/healthz")
    assert response is not None and response.status == 200
    assert response.json() == {"status": "ok"}
    assert '"status":"ok"' in page.inner_text("body")

    shot = tmp_path / "healthz.png"
    page.screenshot(path=shot)
    assert shot.exists() and shot.read_bytes()[:8] == PNG_MAGIC


def test_chat_simulator_page_loads(live_server: str, page: Page) -> None:
    response = page.goto(f"{live_server}/dev/chat")
    assert response is not None and response.status == 200
    assert "聊天模拟器" in page.title()
