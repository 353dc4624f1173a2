"""The H5 pages of my points, my ledger and the branch board render the API's numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.config import Settings
from app.main import create_app
from tests.miniapp.test_me_api import PERIOD, World, build_world, login, ranked_branch


@pytest.fixture
def world(db: Engine) -> World:
    return build_world(db)


@pytest.fixture
def client(settings_env: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings_env)) as client:
        yield client


def text_of(html: str, element_id: str) -> str:
    """The text inside the element with the given id (tags stripped, spaces collapsed)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(div|p|span|strong)>', html, re.S)
    assert match, f"no #{element_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_pages_send_strangers_to_log_in(client):
    for url in ("/h5/me", "/h5/me/ledger?period=2026-11", "/h5/board", "/h5/boards/branch/1"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/h5/login?next=%2Fh5%2F")


def test_my_points_page_shows_the_api_numbers_and_the_trend(client, world):
    login(client, world.member)
    api = client.get("/api/v1/me/points", params={"period": PERIOD}).json()
    response = client.get("/h5/me", params={"period": PERIOD})
    assert response.status_code == 200
    html = response.text
    assert text_of(html, "pp-me-name") == world.member_name
    assert text_of(html, "pp-me-total") == "9" == f"{api['total']:g}"
    assert text_of(html, "pp-me-base") == f"{api['base']:g}"
    assert text_of(html, "pp-me-bonus") == "0"
    assert text_of(html, "pp-me-rank") == str(api["rank"]) == "1"
    assert "共 4 人" in html
    assert "1 条积分记录待审核" in html
    # The breakdown with its bars: 政治合格 3 of 25 is a 12% bar.
    assert re.search(r"政治合格</span>\s*<span class=\"pp-num\">3 / 25</span>", html)
    assert 'style="width: 12.0%"' in html
    # The 12-month chart: an inline SVG whose November bar carries the total.
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="pp-chart"' in html
    assert 'data-period="2026-11" data-value="9.00"' in html
    assert "近12个月积分" in html
    assert 'href="/h5/me/ledger?period=2026-11"' in html
    assert 'href="/h5/board?period=2026-11"' in html
    assert re.search(r'class="pp-nav-item is-active" href="/h5/me"', html)


def test_the_period_switcher_and_the_year_view(client, world):
    login(client, world.member)
    html = client.get("/h5/me", params={"period": "2026"}).text
    api = client.get("/api/v1/me/points", params={"period": "2026"}).json()
    assert re.search(r'class="pp-btn" href="/h5/me\?period=2026" aria-current="page">本年', html)
    assert re.search(r'class="pp-btn pp-btn-plain" href="/h5/me\?period=\d{4}-\d{2}"\s*>本月', html)
    assert text_of(html, "pp-me-total") == f"{api['total']:g}"
    assert text_of(html, "pp-me-grade") == "不合格"
    assert "月均基础分" in html
    assert "民主评议分尚未录入" in html


def test_a_bad_period_gets_a_chinese_page(client, world):
    login(client, world.member)
    for url in ("/h5/me", "/h5/me/ledger", "/h5/board"):
        response = client.get(url, params={"period": "明年"})
        assert response.status_code == 400, url
        assert "看不懂“明年”" in response.text
        assert 'class="pp-box pp-box-error"' in response.text


def test_the_ledger_page_shows_reasons_and_who_recorded_them(client, world):
    login(client, world.member)
    html = client.get("/h5/me/ledger", params={"period": PERIOD}).text
    assert "完成线上学习任务" in html
    assert "完成线上学习" in html and world.secretary_name in html
    assert re.search(
        r'记录人：<span class="pp-entry-recorder">' + re.escape(world.secretary_name), html
    )
    assert '<span class="pp-badge pp-badge-pending">待审核</span>' in html
    assert '<span class="pp-badge pp-badge-reversed">已冲销</span>' in html
    assert "重复录入（冲销 #" in html
    assert "\u22121" in html  # the reversal, with a real minus sign
    assert "参加十月主题党日" not in html
    assert 'href="/h5/me?period=2026-11"' in html


def test_the_board_page_highlights_the_asker(client, world):
    login(client, world.member)
    html = client.get("/h5/board", params={"period": PERIOD}).text
    mine = re.findall(r'<tr class="is-me"[^>]*>(.*?)</tr>', html, re.S)
    assert len(mine) == 1 and world.member_name in mine[0] and ">9<" in mine[0]
    assert text_of(html, "pp-board-notice") == "本支部只公布前 10 名。"
    assert re.search(r'class="pp-nav-item is-active" href="/h5/board"', html)


def test_other_branches_boards_are_for_those_who_manage_them(client, world):
    first, second = world.branches
    login(client, world.member)
    refused = client.get(f"/h5/boards/branch/{second}", params={"period": PERIOD})
    assert refused.status_code == 403
    assert "您只能查看本支部的积分榜" in refused.text
    assert client.get(f"/h5/boards/branch/{first}", params={"period": PERIOD}).status_code == 200
    login(client, world.admin)
    page = client.get(f"/h5/boards/branch/{second}", params={"period": PERIOD})
    assert page.status_code == 200
    assert text_of(page.text, "pp-board-branch") == "第2党支部"
    assert 'class="is-me"' not in page.text
    assert client.get("/h5/boards/branch/999999").status_code == 404


def test_top_n_page_shows_the_own_row_after_the_top(settings_env, db):
    ids, names, _ = ranked_branch(db, "{mode: top_n, n: 2}")
    with TestClient(create_app(settings_env)) as client:
        login(client, ids[3])
        html = client.get("/h5/board", params={"period": PERIOD}).text
    assert names[0] in html and names[1] in html
    assert names[2] not in html and names[4] not in html
    assert text_of(html, "pp-board-notice") == "本支部只公布前 2 名。"
    mine = re.findall(r'<tr class="is-me"[^>]*>(.*?)</tr>', html, re.S)
    assert len(mine) == 1 and names[3] in mine[0] and ">4<" in mine[0]
    assert "⋯" in html
    assert "支部平均分" not in html


def test_full_ranking_page_shows_the_average(settings_env, db):
    ids, names, _ = ranked_branch(db, "{mode: full}")
    with TestClient(create_app(settings_env)) as client:
        login(client, ids[0])
        html = client.get("/h5/board", params={"period": PERIOD}).text
    assert all(name in html for name in names)
    assert text_of(html, "pp-board-average").endswith("支部平均分 20")
    assert "pp-board-notice" not in html
