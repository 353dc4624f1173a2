"""The monthly board as posted to a group: markdown, the PNG picture, the notice and its URL."""

from __future__ import annotations

import io
import logging
import os
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFont
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings
from app.db import write_session
from app.domain.scheme import RankingMode
from app.domain.scoring import Board, BoardRow
from app.links import board_image_url, board_signature, verify_board_signature
from app.main import create_app
from app.models import Organization
from app.render import board_png
from app.services import schemes
from app.services.board_post import board_markdown, board_notice, group_board
from app.services.ledger import Actor, record_entry
from app.services.month_close import close_month
from tests.factories import build_org

PERIOD = "2026-10"
SCHEME = """
code: boardtest
name: 积分榜测试方案
level: member
dimensions: [{code: work, name: 工作, max: 100}]
indicators:
  - {code: task, name: 任务, dimension: work, kind: score, nature: must, points: 10,
     source: automatic}
period: {base_cap: 100}
ranking: RANKING
"""
# Scores 60, 50, 50, 30, 20, 10: ranks 1, 2, 2, 4, 5, 6; average 36.67.
COUNTS = (6, 5, 5, 3, 2, 1)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_branch(db: Engine, ranking: str, *, names: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """A branch of six scored members under a scheme with the given ranking; (id, names)."""
    with write_session(db) as s:
        built = build_org(s, members=len(COUNTS), scheme=None)
        schemes.publish(
            session=s,
            org=built.committee,
            content=SCHEME.replace("RANKING", ranking),
            effective_from=date(2026, 1, 1),
            actor_label="test",
        )
        people = built.everyone()
        for person, name in zip(people, names, strict=False):
            person.name = name
        s.flush()
        for person, count in zip(people, COUNTS, strict=True):
            record_entry(
                session=s,
                member_id=person.id,
                indicator_code="task",
                count=count,
                occurred_on=date(2026, 10, 8),
                reason="完成任务",
                actor=Actor("test"),
            )
        return built.branches[0].id, [p.name for p in people]


def markdown_of(db: Engine, branch_id: int, **kwargs: object) -> str:
    with Session(db) as s:
        branch = s.get(Organization, branch_id)
        return board_markdown(group_board(session=s, branch=branch, period=PERIOD), **kwargs)


def cjk_font() -> Path:
    """This machine's CJK font; `make test` installs one as root (CI must have it)."""
    font = board_png.find_cjk_font()
    if font is None:
        if os.environ.get("PARTYPOINTS_REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail("no CJK font installed (apt-get install fonts-wqy-microhei)")
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    return font


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which warnings were logged once, so a test sees its own."""
    monkeypatch.setattr(board_png, "_warned", set())


def test_top_n_shows_the_top_and_a_tie_at_n_whole_but_never_the_bottom(db):
    branch_id, names = make_branch(db, "{mode: top_n, n: 2}")
    text = markdown_of(db, branch_id)
    assert text.startswith(f"### 第1党支部 2026年10月积分榜\n\n- 第 1 名 {names[0]} 60 分\n")
    assert f"- 第 2 名 {names[1]} 50 分" in text
    assert f"- 第 2 名 {names[2]} 50 分" in text
    for hidden in names[3:]:
        assert hidden not in text
    assert "本支部公布前 2 名" in text
    assert "平均" not in text  # top_n shows no aggregates (scoring.visible_board)
    assert "10月尚未结账" in text


def test_full_shows_every_row_and_the_average(db):
    branch_id, names = make_branch(db, "{mode: full}")
    text = markdown_of(db, branch_id)
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert lines == [
        f"- 第 {rank} 名 {name} {points} 分"
        for rank, name, points in zip(
            (1, 2, 2, 4, 5, 6), names, (60, 50, 50, 30, 20, 10), strict=True
        )
    ]
    assert "支部平均分：36.67" in text
    assert "/我的积分" not in text  # everything is public already


def test_aggregates_and_off_show_no_member_at_all(db):
    branch_id, names = make_branch(db, "{mode: aggregates}")
    text = markdown_of(db, branch_id)
    assert not any(name in text for name in names)
    assert "参与人数 6 人，支部平均分 36.67" in text
    assert "本支部只公布参与人数和平均分" in text

    with write_session(db) as s:
        committee = s.get(Organization, branch_id).parent_id
        schemes.publish(
            session=s,
            org=s.get(Organization, committee),
            content=SCHEME.replace("RANKING", "{mode: 'off'}").replace(
                "code: boardtest", "code: boardtest2"
            ),
            effective_from=date(2026, 10, 1),
            actor_label="test",
        )
    text = markdown_of(db, branch_id)
    assert not any(name in text for name in names)
    assert "平均" not in text and "第 1 名" not in text
    assert "本支部未开启排名公示" in text
    assert "发送 /我的积分 查看本人积分和排名（仅本人可见）" in text


def test_long_boards_are_cut_to_fit_a_chat_message(db):
    branch_id, names = make_branch(db, "{mode: full}")
    full = markdown_of(db, branch_id)
    text = markdown_of(db, branch_id, max_bytes=len(full.encode()) - 10)
    assert len(text.encode()) <= len(full.encode()) - 10
    assert names[0] in text and names[-1] not in text
    assert "人略，完整榜单见积分榜页面" in text
    assert "支部平均分：36.67" in text  # the tail always stays


def test_the_notice_carries_the_signed_picture_when_a_font_is_found(db, settings_env):
    cjk_font()
    branch_id, names = make_branch(db, "{mode: top_n, n: 2}")
    with Session(db) as s:
        notice = board_notice(
            session=s, settings=settings_env, branch=s.get(Organization, branch_id), period=PERIOD
        )
    url = board_image_url(settings_env, branch_id, PERIOD)
    assert url.startswith(f"http://127.0.0.1:8000/media/boards/{branch_id}/2026-10.png?sig=")
    assert f"![积分榜]({url})" in notice.text
    assert notice.markdown and notice.title == "10月积分榜"
    assert names[0] in notice.text and names[3] not in notice.text
    assert f"/h5/boards/branch/{branch_id}?period=2026-10" in notice.text
    assert notice.to_payload()["text"] == notice.text


def test_without_a_font_the_notice_is_text_only_with_a_warning(
    db, settings_env, monkeypatch, caplog, fresh_warnings
):
    branch_id, names = make_branch(db, "{mode: full}")
    monkeypatch.setattr(board_png, "find_cjk_font", lambda configured="": None)
    with caplog.at_level(logging.WARNING, logger="app.render.board_png"), Session(db) as s:
        for _ in range(2):
            notice = board_notice(
                session=s,
                settings=settings_env,
                branch=s.get(Organization, branch_id),
                period=PERIOD,
            )
    assert "![" not in notice.text and "/media/" not in notice.text
    assert all(name in notice.text for name in names)
    warnings = [r for r in caplog.records if "no font with Chinese glyphs" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per group


def test_a_name_the_font_cannot_draw_leaves_a_text_only_post(
    db, settings_env, caplog, fresh_warnings
):
    cjk_font()
    branch_id, _ = make_branch(db, "{mode: full}", names=("张𓀀",))
    with caplog.at_level(logging.WARNING, logger="app.render.board_png"), Session(db) as s:
        notice = board_notice(
            session=s, settings=settings_env, branch=s.get(Organization, branch_id), period=PERIOD
        )
    assert "![" not in notice.text and "张𓀀" in notice.text
    assert any("lacks 1 characters" in r.getMessage() for r in caplog.records)


def test_ranking_off_posts_no_picture(db, settings_env):
    cjk_font()
    branch_id, _ = make_branch(db, "{mode: 'off'}")
    with Session(db) as s:
        notice = board_notice(
            session=s, settings=settings_env, branch=s.get(Organization, branch_id), period=PERIOD
        )
    assert "![" not in notice.text and "本支部未开启排名公示" in notice.text


def test_the_picture_draws_real_glyphs_not_boxes():
    font_path = cjk_font()
    rows = (BoardRow(1, "张三", None, None), BoardRow(2, "欧阳明月", None, None))
    board = Board(mode=RankingMode.full, rows=rows, own=None, members=2, average=None)
    png = board_png.render_board_png(
        board,
        title="生产第一党支部",
        subtitle="2026年10月积分榜",
        font=font_path,
        notes=["本支部公布前 10 名。"],
    )
    assert png is not None and png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 750 and image.height > 400
    # The face the picture uses draws 党 as a glyph of its own, not as its missing-glyph box.
    face = ImageFont.truetype(str(font_path), 32, index=board_png._face_index(font_path))
    assert face.getbbox("党")[2] > 0
    assert bytes(face.getmask("党")) != bytes(face.getmask(board_png.NOTDEF_PROBE))
    drawn = "生产第一党支部2026年10月积分榜张三欧阳明月"
    assert board_png.missing_glyphs(font_path, drawn) == set()
    assert board_png.missing_glyphs(font_path, "张𓀀") == {"𓀀"}


def test_no_font_no_picture(fresh_warnings, caplog):
    board = Board(mode=RankingMode.full, rows=(), own=None, members=0, average=None)
    with caplog.at_level(logging.WARNING, logger="app.render.board_png"):
        assert (
            board_png.render_board_png(board, title="支部", subtitle="2026年10月积分榜", font=None)
            is None
        )
    assert "BOARD_FONT_PATH" in caplog.text


def test_a_configured_font_comes_first_and_a_bad_one_is_passed_over(tmp_path, fresh_warnings):
    font_path = cjk_font()
    assert board_png.find_cjk_font(str(font_path)) == font_path
    bogus = tmp_path / "not-a-font.ttf"
    bogus.write_bytes(b"nothing")
    assert board_png.find_cjk_font(str(bogus)) not in (None, bogus)


def test_board_signatures_bind_branch_and_period(settings_env):
    sig = board_signature(settings_env, 7, PERIOD)
    assert len(sig) == 32
    assert verify_board_signature(settings_env, 7, PERIOD, sig)
    assert not verify_board_signature(settings_env, 8, PERIOD, sig)
    assert not verify_board_signature(settings_env, 7, "2026-11", sig)
    assert not verify_board_signature(settings_env, 7, PERIOD, "")
    assert not verify_board_signature(settings_env, 7, PERIOD, "签名" * 16)
    other = settings_env.model_copy(update={"secret_key": SecretStr("another-secret")})
    assert board_signature(other, 7, PERIOD) != sig


def test_the_picture_endpoint_checks_the_signature(db, settings_env: Settings):
    cjk_font()
    branch_id, _ = make_branch(db, "{mode: top_n, n: 2}")
    good = board_image_url(settings_env, branch_id, PERIOD).split("/media/", 1)[1]
    with TestClient(create_app(settings_env)) as client:
        response = client.get(f"/media/{good}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "public, max-age=300"  # still open
        assert response.content.startswith(PNG_SIGNATURE)
        assert Image.open(io.BytesIO(response.content)).width == 750

        bad = client.get(f"/media/boards/{branch_id}/{PERIOD}.png?sig={'0' * 32}")
        assert bad.status_code == 403 and bad.json()["detail"] == "链接无效或已被篡改"
        assert client.get(f"/media/boards/{branch_id}/{PERIOD}.png").status_code == 403
        assert (
            client.get(f"/media/boards/{branch_id}/{PERIOD}.png?sig={'a' * 500}").status_code == 403
        )
        other = board_signature(settings_env, branch_id, "2026-09")
        assert client.get(f"/media/boards/{branch_id}/{PERIOD}.png?sig={other}").status_code == 403

        unknown = board_signature(settings_env, 99999, PERIOD)
        missing = client.get(f"/media/boards/99999/{PERIOD}.png?sig={unknown}")
        assert missing.status_code == 404 and missing.json()["detail"] == "找不到该党支部"
        with Session(db) as s:
            committee_id = s.get(Organization, branch_id).parent_id
        not_branch = board_signature(settings_env, committee_id, PERIOD)
        assert (
            client.get(f"/media/boards/{committee_id}/{PERIOD}.png?sig={not_branch}").status_code
            == 404
        )
        bad_period = board_signature(settings_env, branch_id, "2026-13")
        assert (
            client.get(f"/media/boards/{branch_id}/2026-13.png?sig={bad_period}").status_code == 404
        )

        with write_session(db) as s:
            committee = s.get(Organization, committee_id)
            close_month(session=s, org=committee, period=PERIOD, actor_label="test")
        closed = client.get(f"/media/{good}")
        assert closed.status_code == 200
        assert closed.headers["cache-control"] == "public, max-age=86400"
