"""Template filters, and base.html rendered through a FastAPI app with its static files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from miniapp_api import templating
from miniapp_api.templating import (
    STATIC_DIR,
    badge,
    configure,
    localtime,
    period_label,
    points,
    templates,
)


@pytest.fixture(autouse=True)
def shanghai():
    configure(ZoneInfo("Asia/Shanghai"))
    yield
    configure(None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal(3), "+3"),
        (-5, "\u22125"),
        (0, "0"),
        (Decimal("2.50"), "+2.5"),
        (Decimal("-1.00"), "\u22121"),
        (None, "—"),
    ],
)
def test_points(value, expected):
    assert points(value) == expected


def test_localtime_in_the_business_zone():
    instant = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
    assert localtime(instant) == "11月22日 14:30"
    # Across midnight the local date moves on.
    assert localtime(datetime(2026, 12, 31, 16, 5, tzinfo=UTC)) == "1月1日 00:05"


def test_localtime_follows_configure():
    configure(ZoneInfo("Europe/London"))
    assert localtime(datetime(2026, 7, 1, 6, 30, tzinfo=UTC)) == "7月1日 07:30"


def test_localtime_of_any_aware_zone_and_of_naive_utc():
    tokyo = datetime(2026, 11, 22, 15, 30, tzinfo=timezone(timedelta(hours=9)))
    assert localtime(tokyo) == "11月22日 14:30"
    assert localtime(datetime(2026, 11, 22, 6, 30)) == "11月22日 14:30"
    assert localtime(None) == "—"


def test_localtime_defaults_to_the_settings_zone(monkeypatch):
    configure(None)

    class FakeSettings:
        tz = ZoneInfo("Asia/Tokyo")

    monkeypatch.setattr(templating, "get_settings", lambda: FakeSettings)
    assert localtime(datetime(2026, 11, 22, 6, 30, tzinfo=UTC)) == "11月22日 15:30"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("2026-11", "2026年11月"),
        ("2026-01", "2026年1月"),
        ("2026", "2026年"),
        ("2026-Q4", "2026年第四季度"),
        ("2026-Q1", "2026年第一季度"),
        (" 2026-03 ", "2026年3月"),
        ("2026-13", "2026-13"),
        ("下个月", "下个月"),
        ("", "—"),
        (None, "—"),
    ],
)
def test_period_label(key, expected):
    assert period_label(key) == expected


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ("准时", "pp-badge pp-badge-ontime"),
        ("迟到", "pp-badge pp-badge-late"),
        ("请假", "pp-badge pp-badge-leave"),
        ("缺席", "pp-badge pp-badge-absent"),
        ("待审批", "pp-badge pp-badge-pending"),
        ("已批准", "pp-badge pp-badge-approved"),
        ("已驳回", "pp-badge pp-badge-rejected"),
        ("其他", "pp-badge"),
    ],
)
def test_badge(status, cls):
    assert str(badge(status)) == f'<span class="{cls}">{status}</span>'


def test_badge_uses_a_label_and_escapes():
    class Outcome:
        label = "迟到"

    assert str(badge(Outcome())) == '<span class="pp-badge pp-badge-late">迟到</span>'
    assert "<b>" not in str(badge("<b>x</b>"))


def test_filters_inside_a_template_and_autoescape():
    template = templates.env.from_string(
        "{{ v | points }}|{{ t | localtime }}|{{ p | period_label }}|{{ s | badge }}|{{ raw }}"
    )
    html = template.render(
        v=Decimal("-2.50"),
        t=datetime(2026, 11, 22, 6, 30, tzinfo=UTC),
        p="2026-11",
        s="请假",
        raw="<script>",
    )
    assert html == (
        "\u22122.5|11月22日 14:30|2026年11月|"
        '<span class="pp-badge pp-badge-leave">请假</span>|&lt;script&gt;'
    )


def _app() -> FastAPI:
    app = FastAPI()
    app.mount("/h5/static", StaticFiles(directory=STATIC_DIR), name="h5-static")

    @app.get("/page")
    def page(request: Request, error: str | None = None):
        return templates.TemplateResponse(
            request,
            "base.html",
            {
                "title": "我的积分",
                "back_url": "/h5/home",
                "error": error,
                "notice": "本月积分将于月底结算",
                "nav_items": [
                    {"href": "/h5/me", "label": "我的", "active": True},
                    {"href": "/h5/board", "label": "排行", "active": False},
                ],
            },
        )

    @app.get("/bare")
    def bare(request: Request):
        return templates.TemplateResponse(request, "base.html", {})

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app())


def test_base_html_renders_the_layout(client):
    response = client.get("/page")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert html.startswith("<!doctype html>")
    assert '<html lang="zh-CN">' in html
    assert '<meta charset="utf-8">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<title>我的积分</title>" in html
    assert re.search(r'<h1 class="pp-header-title">\s*我的积分\s*</h1>', html)
    assert 'href="/h5/home"' in html
    assert '<div class="pp-box pp-box-notice" role="status">本月积分将于月底结算</div>' in html
    assert "pp-box-error" not in html
    assert re.search(r'class="pp-nav-item is-active" href="/h5/me" aria-current="page">我的', html)
    assert 'class="pp-nav-item" href="/h5/board">排行' in html
    assert '<link rel="stylesheet" href="/h5/static/h5.css">' in html
    assert '<script src="/h5/static/h5.js"></script>' in html
    # Nothing fetched from elsewhere: the webviews may not reach a CDN.
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_base_html_escapes_the_context(client):
    html = client.get("/page", params={"error": "<img src=x onerror=alert(1)>"}).text
    assert "<img src=x" not in html
    assert (
        '<div class="pp-box pp-box-error" role="alert">'
        "&lt;img src=x onerror=alert(1)&gt;</div>" in html
    )


def test_base_html_defaults(client):
    html = client.get("/bare").text
    assert "<title>党员积分助手</title>" in html
    assert "pp-back" not in html
    assert "pp-nav-item" not in html
    assert "pp-box-notice" not in html


def test_static_assets_are_served(client):
    html = client.get("/page").text
    for ref in re.findall(r'(?:href|src)="(/h5/static/[^"]+)"', html):
        response = client.get(ref)
        assert response.status_code == 200, ref
    css = client.get("/h5/static/h5.css")
    assert css.headers["content-type"].startswith("text/css")
    assert '"PingFang SC"' in css.text and '"Microsoft YaHei"' in css.text
    assert '"Noto Sans CJK SC"' in css.text
    js = client.get("/h5/static/h5.js")
    assert "javascript" in js.headers["content-type"]
    assert "window.ppFetch = ppFetch" in js.text


def test_static_script_is_plain_es5():
    source = (STATIC_DIR / "h5.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)
    for construct in (
        r"\blet\b",
        r"\bconst\b",
        "=>",
        r"\basync\b",
        r"\bawait\b",
        "`",
        r"\bimport\b",
        r"\bexport\b",
        r"\bclass\b",
        r"\bfetch\(",
    ):
        assert not re.search(construct, code), construct


def test_every_badge_status_has_a_style():
    css = (STATIC_DIR / "h5.css").read_text(encoding="utf-8")
    for variant in set(templating.BADGE_CLASSES.values()):
        assert f".pp-badge-{variant}" in css
