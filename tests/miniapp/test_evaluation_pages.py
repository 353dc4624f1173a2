"""The evaluation and declaration H5 pages for each role: Chinese text, each role's forms and
buttons only, the multipart evidence upload with its limits, and logins asked for."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.config import Settings
from app.db import write_session
from app.models import Organization, Person
from app.services.evaluation import accept_self_scores, score_member
from app.services.evaluation_publish import publish_branch_month, raise_objection
from tests.miniapp.evaluation_world import (
    COMMITTEE,
    COMMITTEE_IN_BRANCH,
    EXE,
    MAX_BYTES,
    MEMBER,
    OTHER,
    PERIOD,
    PNG,
    REVIEWER,
    SECRETARY,
    TZ,
    Demo,
    as_of,
    at,
    confirm_rest,
    login,
    make_client,
    seed,
)

NAV_BRANCHES = 'href="/h5/evaluation/branches"'


@pytest.fixture
def demo(db: Engine) -> Demo:
    return seed(db)


@pytest.fixture
def client(settings_env: Settings, tmp_path) -> Iterator[TestClient]:
    with make_client(settings_env, tmp_path / "evidence") as client:
        yield client


def page(client: TestClient, url: str, status: int = 200) -> str:
    answer = client.get(url)
    assert answer.status_code == status, answer.text
    return answer.text


def published_month(db: Engine, demo: Demo) -> None:
    """Everyone self-evaluated on 26 Nov, scored on 7 Dec, published on 8 Dec; the other
    member objected on 9 Dec."""
    confirm_rest(db, demo, skip=(), when=at(11, 26))
    with write_session(db) as s:
        branch = s.get(Organization, demo.branch)
        people = {key: s.get(Person, demo[key]) for key in (SECRETARY, COMMITTEE_IN_BRANCH,
                                                            COMMITTEE, OTHER)}
        accept_self_scores(session=s, secretary=people[SECRETARY], branch=branch,
                           period=PERIOD, now=at(12, 7))
        score_member(session=s, secretary=people[COMMITTEE_IN_BRANCH],
                     member_id=demo[SECRETARY], period=PERIOD, assessed={"morality": 1},
                     reason="", now=at(12, 7), tz=TZ)
        publish_branch_month(session=s, committee_actor=people[COMMITTEE], branch=branch,
                             period=PERIOD, now=at(12, 8), tz=TZ)
        raise_objection(session=s, member=people[OTHER], period=PERIOD,
                        reason="学习心得已按时提交，被误驳回", now=at(12, 9), tz=TZ)


def new_draft(client: TestClient) -> int:
    answer = client.post("/api/v1/declarations", json={
        "indicator_code": "volunteering", "description": "社区志愿服务",
        "occurred_on": "2026-11-15"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


@pytest.mark.parametrize("path", ["/h5/evaluation?period=2026-11", "/h5/evaluation/branches",
                                  "/h5/evaluation/branches/1", "/h5/declarations/new",
                                  "/h5/declarations/reviews", "/h5/declarations/1"])
def test_pages_send_a_stranger_to_log_in(client, demo, path):
    answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/h5/login?next=%2Fh5%2F")


def test_a_member_confirms_from_the_prefilled_form(client, demo):
    with as_of(at(11, 20)):
        login(client, demo, MEMBER)
        # Until November's self-evaluation opens, the month under evaluation is October.
        assert "2026年10月月度评议" in page(client, "/h5/evaluation")
        html = page(client, "/h5/evaluation?period=2026-11")
        assert "<title>月度评议</title>" in html and "2026年11月月度评议" in html
        assert "自评将于 11月25日 00:00 开放" in html and 'id="pp-self-form"' not in html
    with as_of(at(11, 26)):
        login(client, demo, MEMBER)
        html = page(client, "/h5/evaluation")
        assert 'id="pp-self-form" data-api="/api/v1/evaluation/me/self"' in html
        assert "政治合格：台账 3 分，可加 0–10 分" in html and "按时确认另记 2 分。" in html
        assert re.search(r'name="adjustments\.political" data-kind="number" value="0" min="0" '
                         r'max="10" step="1"', html)
        assert ">确认</button>" in html and "自评时间" in html and "11月25日 — 12月5日" in html
        assert "申报加分" in html and 'href="/h5/declarations/new?period=2026-11"' in html
        assert re.search(r'class="pp-nav-item is-active" href="/h5/evaluation"', html)
        assert NAV_BRANCHES not in html and 'href="/h5/approvals"' not in html
        assert '<script src="/h5/static/h5-forms.js"></script>' in html
        assert "‹ 2026年10月" in html and "2026年12月 ›" not in html
        assert "看不懂月份" in page(client, "/h5/evaluation?period=2026-99", 400)


def test_the_published_month_shows_the_score_reason_and_objections(client, db, demo):
    published_month(db, demo)
    with as_of(at(12, 9, 12)):
        login(client, demo, SECRETARY)
        html = page(client, "/h5/evaluation?period=2026-11")
        assert "公示中" in html and "本月积分" in html and "书记评分" in html
        assert "本月评价已于 12月8日 10:00 公示，异议期至 12月11日 10:00" in html
        assert 'id="pp-objection-form"' in html and "提出异议</button>" in html
        login(client, demo, OTHER)
        html = page(client, "/h5/evaluation?period=2026-11")
        assert "异议处理中" in html and "学习心得已按时提交，被误驳回" in html
        assert "待答复" in html and 'id="pp-objection-form"' not in html


def test_declaring_with_a_photo_from_the_pages(client, db, demo, tmp_path):
    with as_of(at(11, 20)):
        login(client, demo, MEMBER)
        html = page(client, "/h5/declarations/new?period=2026-11")
        assert "<title>申报加分</title>" in html and "2026年11月申报加分" in html
        assert "参加志愿服务活动（+3 分，需佐证材料）" in html
        assert 'data-then="/h5/declarations/{id}"' in html and 'max="2026-11-20"' in html
        draft = new_draft(client)
        html = page(client, f"/h5/declarations/{draft}")
        assert f"申报 D{draft}" in html and "待提交" in html and "0/9" in html
        assert (f'action="/h5/declarations/{draft}/evidence" enctype="multipart/form-data"'
                in html)
        assert 'accept="image/*,application/pdf" capture' in html and "不超过 19 KB" in html
        assert "提交审核</button>" in html

        url = f"/h5/declarations/{draft}/evidence"
        sent = client.post(url, files={"file": ("志愿服务.png", PNG, "image/png")})
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/h5/declarations/{draft}?uploaded=1"
        html = page(client, sent.headers["location"])
        assert "材料已上传。" in html and "1/9" in html
        assert re.search(r'<img src="/api/v1/evidence/\d+" alt="志愿服务.png"', html)

        too_big = client.post(url, files={"file": ("大图.png", PNG + b"\x00" * MAX_BYTES,
                                                   "image/png")})
        assert too_big.status_code == 413 and "文件超过 19 KB 上限" in too_big.text
        renamed = client.post(url, files={"file": ("program.png", EXE, "image/png")})
        assert renamed.status_code == 415
        assert "只能上传 JPG、PNG、WEBP 图片或 PDF 文件" in renamed.text
        assert 'class="pp-box pp-box-error"' in renamed.text and "1/9" in renamed.text
        assert client.post(url).status_code == 400  # no file chosen
        assert len(list((tmp_path / "evidence").rglob("*.*"))) == 1

        login(client, demo, OTHER)
        assert "找不到申报" in page(client, f"/h5/declarations/{draft}", 404)
        assert client.post(url, files={"file": ("a.png", PNG, "image/png")}).status_code == 404


def test_the_reviewer_sees_evidence_and_both_buttons(client, demo):
    with as_of(at(11, 20)):
        login(client, demo, MEMBER)
        draft = new_draft(client)
        client.post(f"/api/v1/declarations/{draft}/evidence",
                    files={"file": ("志愿服务.png", PNG, "image/png")})
        entry = client.post(f"/api/v1/declarations/{draft}/submit").json()["entry_id"]
        html = page(client, "/h5/declarations/reviews")
        assert "目前没有待您审核的申报。" in html
        assert "待审核" in page(client, f"/h5/declarations/{draft}")

        login(client, demo, REVIEWER)
        html = page(client, "/h5/declarations/reviews")
        assert "<title>申报审核</title>" in html and "参加志愿服务活动" in html
        assert f'data-api="/api/v1/declarations/reviews/{entry}"' in html
        assert re.search(r'<img src="/api/v1/evidence/\d+"', html)
        assert 'data-value="true">通过</button>' in html
        assert 'data-needs="reason" data-needs-message="驳回时请写明理由">驳回</button>' in html
        assert "有 1 条申报待您审核" in page(client, "/h5/evaluation")


def test_the_branch_month_for_the_secretary_and_the_committee(client, db, demo):
    confirm_rest(db, demo, skip=(MEMBER,), when=at(11, 26))
    with as_of(at(12, 7)):
        login(client, demo, SECRETARY)
        html = page(client, f"/h5/evaluation/branches/{demo.branch}?period=2026-11")
        assert "<title>支部评议</title>" in html and "生产第一党支部 · 2026年11月" in html
        assert "党员评议情况" in html and "11/12" in html and "待自评" in html
        assert "一键采纳自评分</button>" in html and "审定公示</button>" not in html
        assert 'name="scores.political"' in html and "评分理由（与自评相差超过 2 分时必填）" in html
        assert NAV_BRANCHES in html and 'href="/h5/approvals"' in html
        branches = page(client, "/h5/evaluation/branches?period=2026-11")
        assert "生产第一党支部" in branches and "综合管理党支部" not in branches

        login(client, demo, MEMBER)
        html = page(client, f"/h5/evaluation/branches/{demo.branch}", 403)
        assert "只有本支部书记和党委可以查看支部月度评议" in html
        assert "您没有需要评议的支部。" in page(client, "/h5/evaluation/branches")

    published_month(db, demo)
    with as_of(at(12, 10)):
        login(client, demo, COMMITTEE)
        html = page(client, f"/h5/evaluation/branches/{demo.branch}?period=2026-11")
        assert "公示中" in html and "异议期至 12月11日 10:00" in html
        assert "学习心得已按时提交，被误驳回" in html and "答复</button>" in html
        assert "支持异议，记入更正" in html and "结账</button>" not in html
        assert "一键采纳自评分</button>" not in html and 'name="scores.political"' not in html
        listed = page(client, "/h5/evaluation/branches?period=2026-11")
        assert "综合管理党支部" in listed and "市场营销党支部" in listed
        assert NAV_BRANCHES in listed and 'href="/h5/approvals"' not in listed


def test_the_forms_script_is_served_and_plain_es5(client):
    script = client.get("/h5/static/h5-forms.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    # The same old webviews as h5.js: no ES2015 syntax, no fetch().
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script.text, flags=re.S)
    assert not re.search(r"\b(let|const|class|async|await|import|export)\b|=>|`|\bfetch\(", code)
    assert "ppFetch(" in code and "data-api" in code

