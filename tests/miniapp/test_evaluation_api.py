"""The evaluation and declaration API on a real database with the demo organisation: a month
walked through from declarations to close with the numbers checked by hand, every role's
refusals, upload limits, the evidence served safely, and bad input answered in Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import write_session
from app.domain.vocab import OrgKind
from app.models import EvidenceFile, LedgerEntry, MonthResult, Organization, Person
from app.services import orgs
from tests.miniapp.evaluation_world import (
    COMMITTEE,
    COMMITTEE_IN_BRANCH,
    EXE,
    MAX_BYTES,
    MEMBER,
    OTHER,
    OTHER_SECRETARY,
    PERIOD,
    PNG,
    REVIEWER,
    SECRETARY,
    STRANGER,
    THIRD,
    Demo,
    as_of,
    at,
    confirm_rest,
    login,
    make_client,
    seed,
)

PDF = b"%PDF-1.7\n" + b"\x00" * 64


@pytest.fixture
def demo(db: Engine) -> Demo:
    return seed(db)


@pytest.fixture
def client(settings_env: Settings, tmp_path) -> Iterator[TestClient]:
    with make_client(settings_env, tmp_path / "evidence") as client:
        yield client


def refused(answer: Response, status: int, words: str) -> None:
    """The request was refused with `status` and a Chinese reason containing `words`."""
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"], answer.json()["detail"]


def ok(answer: Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def declare(client: TestClient, code: str, what: str, *, data: bytes = PNG,
            name: str = "照片.png", kind: str = "image/png") -> dict[str, Any]:
    """As the logged-in member: declare, attach one file and submit; the declaration."""
    draft = ok(client.post("/api/v1/declarations", json={
        "indicator_code": code, "description": what, "occurred_on": "2026-11-15"}), 201)
    ok(client.post(f"/api/v1/declarations/{draft['id']}/evidence",
                   files={"file": (name, data, kind)}), 201)
    return ok(client.post(f"/api/v1/declarations/{draft['id']}/submit"))


def branch_url(demo: Demo, tail: str = "") -> str:
    return f"/api/v1/evaluation/branches/{demo.branch}{tail}"


def score(client: TestClient, demo: Demo, userid: str, **body: Any) -> Response:
    return client.post(branch_url(demo, f"/members/{demo[userid]}/score"),
                       json={"period": PERIOD, **body})


def test_a_month_walked_through_the_api(client, db, demo):
    # --- Declarations (20 Nov): the member's is approved, the other's rejected. ---
    with as_of(at(11, 20)):
        login(client, demo, MEMBER)
        codes = [i["code"] for i in ok(client.get("/api/v1/declarations/indicators",
                                                  params={"period": PERIOD}))["items"]]
        assert "volunteering" in codes and "online_study" not in codes
        draft = ok(client.post("/api/v1/declarations", json={
            "indicator_code": "volunteering", "description": "社区志愿服务",
            "occurred_on": "2026-11-15"}), 201)
        assert (draft["status"], draft["status_label"], draft["can_attach"]) == (
            "draft", "待提交", True)
        assert "请上传佐证材料" in draft["message"]
        refused(client.post(f"/api/v1/declarations/{draft['id']}/submit"), 400,
                "需要上传佐证材料后再提交")
        attached = ok(client.post(f"/api/v1/declarations/{draft['id']}/evidence",
                                  files={"file": ("志愿服务.png", PNG, "image/png")}), 201)
        (photo,) = attached["files"]
        assert attached["message"] == "已上传“志愿服务.png”。"
        assert (photo["name"], photo["kind"], photo["size"]) == ("志愿服务.png", "image", len(PNG))
        submitted = ok(client.post(f"/api/v1/declarations/{draft['id']}/submit"))
        assert submitted["status"] == "pending" and submitted["can_attach"] is False
        good = submitted["entry_id"]
        refused(client.post(f"/api/v1/declarations/reviews/{good}", json={"approve": True}),
                403, "不能审核自己的申报")

        login(client, demo, OTHER)
        bad = declare(client, "study_notes", "学习心得", data=PDF, name="心得.pdf",
                      kind="application/pdf")["entry_id"]
        refused(client.post(f"/api/v1/declarations/reviews/{good}", json={"approve": True}),
                403, "您不是该申报的指定审核人")
        assert ok(client.get("/api/v1/declarations/reviews"))["items"] == []

        login(client, demo, REVIEWER)
        queue = ok(client.get("/api/v1/declarations/reviews"))["items"]
        assert [(i["code"], i["points"]) for i in queue] == [(f"S{good}", 3), (f"S{bad}", 2)]
        assert queue[0]["evidence"][0]["url"] == photo["url"]
        assert client.get(photo["url"]).content == PNG
        refused(client.post(f"/api/v1/declarations/reviews/{bad}", json={"approve": False}),
                400, "驳回时必须填写理由")
        approved = ok(client.post(f"/api/v1/declarations/reviews/{good}",
                                  json={"approve": True}))
        assert (approved["status"], approved["status_label"]) == ("approved", "已通过")
        ok(client.post(f"/api/v1/declarations/reviews/{bad}",
                       json={"approve": False, "reason": "心得与本月学习主题无关"}))
        refused(client.post(f"/api/v1/declarations/reviews/{good}", json={"approve": True}),
                409, "已处理")

        login(client, demo, OTHER)
        mine = ok(client.get("/api/v1/evaluation/me", params={"period": PERIOD}))
        (rejected,) = mine["declarations"]
        assert rejected["status_label"] == "已驳回"
        view = ok(client.get(f"/api/v1/declarations/{rejected['id']}"))
        assert view["review_reason"] == "心得与本月学习主题无关"

    # --- Self-evaluations (26 Nov, on time: +2 political for confirming on time). ---
    with as_of(at(11, 26)):
        login(client, demo, MEMBER)
        form = ok(client.get("/api/v1/evaluation/me"))
        assert (form["period"], form["state"], form["can_confirm"], form["late"]) == (
            PERIOD, "open", True, False)
        assert form["on_time_points"] == 2 and form["ledger_total"] == 12
        assert [(d["code"], d["ledger"], d["high"], d["step"]) for d in form["dimensions"]] == [
            ("political", 3, 13, 1), ("discipline", 6, 14, 1), ("morality", 3, 18, 1),
            ("role", 0, 10, 1)]
        confirmed = ok(client.post("/api/v1/evaluation/me/self", json={
            "period": PERIOD, "adjustments": {"political": 5}, "note": "按时参加各项活动"}))
        # political 3 + on time 2 + 5 = 10, discipline 6, morality 3, role 0.
        assert (confirmed["state"], confirmed["total"]) == ("self_evaluated", 19)
        refused(client.post("/api/v1/evaluation/me/self", json={"period": PERIOD}), 409,
                "本月自评已确认，不能重复确认")
        login(client, demo, OTHER)
        assert ok(client.post("/api/v1/evaluation/me/self",
                              json={"period": PERIOD}))["total"] == 4
    confirm_rest(db, demo, skip=(MEMBER, OTHER), when=at(11, 26))

    # --- Scoring (7 Dec): the secretary scores members, the committee scores him. ---
    with as_of(at(12, 7)):
        login(client, demo, MEMBER)
        refused(score(client, demo, MEMBER, scores={"political": 12}), 403, "不能给自己评分")
        refused(score(client, demo, OTHER, scores={"political": 12}), 403,
                "只能给本支部党员评分")
        refused(client.get(branch_url(demo), params={"period": PERIOD}), 403,
                "只有本支部书记和党委可以查看")
        login(client, demo, OTHER_SECRETARY)
        refused(client.get(branch_url(demo), params={"period": PERIOD}), 403,
                "只有本支部书记和党委可以查看")

        login(client, demo, SECRETARY)
        table = ok(client.get(branch_url(demo), params={"period": PERIOD}))
        assert (table["counts"]["members"], table["counts"]["self_evaluated"]) == (12, 12)
        assert table["can_accept"] is True and table["can_publish"] is False
        rows = {r["person_id"]: r for r in table["rows"]}
        assert rows[demo[MEMBER]]["self_total"] == 19 and rows[demo[MEMBER]]["can_score"]
        assert rows[demo[SECRETARY]]["is_branch_secretary"]
        assert not rows[demo[SECRETARY]]["can_score"]
        refused(score(client, demo, OTHER, scores={"political": 10}), 400,
                "评分与自评相差 6 分，超过 2 分，请填写理由")
        refused(score(client, demo, OTHER, scores={"political": 10}, total=10), 400, "二选一")
        refused(score(client, demo, OTHER), 400, "二选一")
        refused(score(client, demo, OTHER, scores={"political": 40}, reason="多评"), 400,
                "政治合格最多可评 14 分")
        scored = ok(score(client, demo, OTHER, scores={"political": 10},
                          reason="学习心得未按要求提交，政治表现从严评定"))
        assert (scored["state"], scored["total"]) == ("scored", 10)
        assert ok(score(client, demo, THIRD, scores={"political": 3}))["total"] == 3
        refused(score(client, demo, SECRETARY, scores={"morality": 3}), 403, "不能给自己评分")
        accepted = ok(client.post(branch_url(demo, "/accept-self-scores"),
                                  json={"period": PERIOD}))
        assert len(accepted["accepted"]) == 9
        assert accepted["skipped"] == [{"name": table["rows"][0]["name"],
                                        "reason": "不能给自己评分"}]
        refused(client.post(branch_url(demo, "/publish"), json={"period": PERIOD}), 403,
                "只有党委可以审定公示月度评价")

        login(client, demo, COMMITTEE_IN_BRANCH)
        refused(score(client, demo, SECRETARY, scores={"morality": 3}), 400, "请填写理由")
        assert ok(score(client, demo, SECRETARY, scores={"morality": 3},
                        reason="带领支部开展志愿服务"))["total"] == 5
        refused(client.post(branch_url(demo, "/publish"), json={"period": PERIOD}), 403,
                "本支部有由您评定的月度评分，需由其他党委成员审定公示")

    # --- Publication (8 Dec) by the other committee member: three days for objections. ---
    with as_of(at(12, 8)):
        login(client, demo, COMMITTEE)
        assert ok(client.get(branch_url(demo), params={"period": PERIOD}))["can_publish"]
        published = ok(client.post(branch_url(demo, "/publish"), json={"period": PERIOD}))
        assert published["objection_deadline"].startswith("2026-12-11T02:00")
        assert published["message"].endswith("异议期至 12月11日 10:00。")
        refused(client.post(branch_url(demo, "/publish"), json={"period": PERIOD}), 409,
                "本月评价已公示，无需重复公示")

    # --- An objection (9 Dec), upheld with a correcting entry (10 Dec). ---
    with as_of(at(12, 9)):
        login(client, demo, OTHER)
        mine = ok(client.get("/api/v1/evaluation/me", params={"period": PERIOD}))
        assert (mine["state"], mine["result_total"], mine["can_object"]) == (
            "published", 10, True)
        assert mine["assessed_reason"] == "学习心得未按要求提交，政治表现从严评定"
        objection_url = "/api/v1/evaluation/me/objections"
        refused(client.post(objection_url, json={"period": PERIOD, "reason": " "}), 400,
                "请写明异议理由")
        raised = ok(client.post(objection_url, json={
            "period": PERIOD, "reason": "学习心得已按时提交，被误驳回"}), 201)
        refused(client.post(objection_url, json={"period": PERIOD, "reason": "再说一次"}), 409,
                "您的异议正在处理中")
        answer_url = f"/api/v1/evaluation/objections/{raised['id']}/answer"
        upheld = {"uphold": True, "answer": "经核实心得已提交，予以更正",
                  "correction_points": 2, "indicator_code": "study_notes"}
        refused(client.post(answer_url, json=upheld), 403, "不能答复自己提出的异议")
        login(client, demo, MEMBER)
        refused(client.post(answer_url, json=upheld), 403, "只能答复本支部党员的异议")
    with as_of(at(12, 10)):
        login(client, demo, SECRETARY)
        table = ok(client.get(branch_url(demo), params={"period": PERIOD}))
        assert table["phase"] == "publicity" and table["counts"]["objections_open"] == 1
        assert [o["can_answer"] for o in table["objections"]] == [True]
        refused(client.post(answer_url, json={**upheld, "indicator_code": None}), 400,
                "支持异议时须给出更正的指标和分值")
        refused(client.post(answer_url, json={**upheld, "correction_points": 3}), 400,
                "的正整数倍")
        answered = ok(client.post(answer_url, json=upheld))
        assert (answered["status"], answered["correction_points"]) == ("upheld", 2)
        login(client, demo, COMMITTEE)
        refused(client.post(branch_url(demo, "/close"), json={"period": PERIOD}), 400,
                "异议期至 12月11日 10:00 结束，届时才能结账")

    # --- Close (11 Dec, after the window). ---
    with as_of(at(12, 11, 12)):
        login(client, demo, COMMITTEE_IN_BRANCH)
        assert ok(client.get(branch_url(demo), params={"period": PERIOD}))["can_close"]
        closed = ok(client.post(branch_url(demo, "/close"), json={"period": PERIOD}))
        assert closed["members"] == 12
        refused(client.post(branch_url(demo, "/close"), json={"period": PERIOD}), 409,
                "本月已结账，无需重复结账")
        login(client, demo, OTHER)
        final = ok(client.get("/api/v1/evaluation/me", params={"period": PERIOD}))
        assert (final["state"], final["result_total"], final["can_object"]) == (
            "closed", 12, False)
        assert final["objections"][0]["status_label"] == "已支持"

    # By hand (xinluo; political / discipline / morality / role):
    #   MEMBER: online 3 + on time 2 + review 5 = 10 / attendance 6 / volunteering 3 / 0 → 19
    #   OTHER:  online 2 + on time 2 + review 6 + corrected study notes 2 = 12          → 12
    #   SECRETARY: on time 2 / 0 / review 3 / 0                                          → 5
    #   THIRD: on time 2 + review 1                                                      → 3
    #   everyone else: on time 2                                                         → 2
    with Session(db) as s:
        results = {r.person_id: r.total for r in s.exec(
            select(MonthResult).where(MonthResult.period == PERIOD))}
        names = {p.id: p.dingtalk_userid for p in s.exec(select(Person))}
    by_user = {names[pid]: total for pid, total in results.items()}
    assert {u: by_user.pop(u) for u in (MEMBER, OTHER, SECRETARY, THIRD)} == {
        MEMBER: 19, OTHER: 12, SECRETARY: 5, THIRD: 3}
    assert len(by_user) == 8 and set(by_user.values()) == {2}


def test_evidence_is_only_for_those_allowed_and_served_inert(client, db, demo):
    with as_of(at(11, 20)):
        login(client, demo, MEMBER)
        photo = declare(client, "volunteering", "社区志愿服务")
        pdf = declare(client, "good_deed", "拾金不昧", data=PDF, name="表扬信.pdf",
                      kind="application/pdf")
        (photo_file,) = ok(client.get(f"/api/v1/declarations/{photo['id']}"))["files"]
        (pdf_file,) = ok(client.get(f"/api/v1/declarations/{pdf['id']}"))["files"]
        for viewer in (MEMBER, SECRETARY, COMMITTEE, REVIEWER):
            login(client, demo, viewer)
            shown = client.get(photo_file["url"])
            assert shown.status_code == 200, viewer
            assert shown.headers["content-type"] == "image/png"
            assert shown.headers["x-content-type-options"] == "nosniff"
            assert shown.headers["content-disposition"].startswith("inline;")
            assert "sandbox" in shown.headers["content-security-policy"]
        download = client.get(pdf_file["url"])
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment;")
        for outsider in (STRANGER, OTHER, OTHER_SECRETARY):
            login(client, demo, outsider)
            refused(client.get(photo_file["url"]), 404, "找不到该材料，或您无权查看")
            refused(client.get(f"/api/v1/declarations/{photo['id']}"), 404,
                    f"找不到申报 D{photo['id']}")
        refused(client.get("/api/v1/evidence/999999"), 404, "找不到该材料")
        client.cookies.clear()
        refused(client.get(photo_file["url"]), 401, "请先登录")


def test_uploads_are_limited_by_size_and_content(client, db, demo, tmp_path):
    with as_of(at(11, 20)):
        login(client, demo, MEMBER)
        draft = ok(client.post("/api/v1/declarations", json={
            "indicator_code": "volunteering", "description": "志愿服务",
            "occurred_on": "2026-11-15"}), 201)
        url = f"/api/v1/declarations/{draft['id']}/evidence"

        def upload(data: bytes, name: str = "photo.png", kind: str = "image/png",
                   **headers: str) -> Response:
            return client.post(url, files={"file": (name, data, kind)}, headers=headers)

        refused(upload(PNG + b"\x00" * MAX_BYTES), 413, "文件超过 19 KB 上限")
        refused(upload(EXE, "program.png"), 415, "只能上传 JPG、PNG、WEBP 图片或 PDF 文件")
        refused(upload(b"#!/bin/sh\nrm -rf /\n", "run.pdf", "application/pdf"), 415,
                "只能上传")
        refused(upload(PNG, "scan.pdf", "application/pdf"), 415, "不符")
        refused(upload(b""), 400, "文件是空的")
        refused(upload(PNG, Origin="https://evil.example"), 403, "请从本系统的页面上传材料")
        assert client.post(url).status_code == 422  # no file at all
        assert not (tmp_path / "evidence").exists()  # nothing refused reached the disk
        with Session(db) as s:
            assert s.exec(select(EvidenceFile)).all() == []

        ok(upload(PNG, Origin="http://testserver"), 201)
        login(client, demo, OTHER)
        refused(upload(PNG), 404, f"找不到申报 D{draft['id']}")
        login(client, demo, MEMBER)
        ok(client.post(f"/api/v1/declarations/{draft['id']}/submit"))
        refused(upload(PNG), 409, "已提交，不能再修改")


def test_a_reviewer_never_reviews_their_own_and_members_stay_in_their_branch(client, demo):
    with as_of(at(11, 20)):
        login(client, demo, REVIEWER)
        own = declare(client, "volunteering", "社区志愿服务")
        assert ok(client.get("/api/v1/declarations/reviews"))["items"] == []
        refused(client.post(f"/api/v1/declarations/reviews/{own['entry_id']}",
                            json={"approve": True}), 403, "不能审核自己的申报")
        refused(client.post("/api/v1/declarations/reviews/999999", json={"approve": True}),
                404, "找不到申报 S999999")
        login(client, demo, MEMBER)
        refused(client.get(f"/api/v1/evaluation/branches/{demo.other_branch}"), 403,
                "只有本支部书记和党委可以查看")
        refused(client.get("/api/v1/evaluation/branches/999999"), 404, "找不到该党支部")
        assert ok(client.get("/api/v1/evaluation/branches"))["items"] == []
        login(client, demo, SECRETARY)
        listed = ok(client.get("/api/v1/evaluation/branches"))["items"]
        assert [b["branch_id"] for b in listed] == [demo.branch]
        refused(score(client, demo, STRANGER, scores={"political": 1}), 404, "本支部没有该党员")
        login(client, demo, COMMITTEE)
        assert len(ok(client.get("/api/v1/evaluation/branches"))["items"]) == 3
        client.cookies.clear()
        refused(client.get("/api/v1/evaluation/me"), 401, "请先登录")


def test_only_organisations_that_keep_months_can_be_published(client, db, demo):
    with write_session(db) as s:
        committee = s.get(Organization, demo.committee)
        empty = orgs.create_child(s, committee, "新建党支部", OrgKind.branch,
                                  actor_label="test").id
    with as_of(at(12, 8)):
        login(client, demo, COMMITTEE)
        # The committee keeps no months of its own here: publishing it would close them all.
        refused(client.get(f"/api/v1/evaluation/branches/{demo.committee}"), 404,
                "找不到该党支部")
        refused(client.post(f"/api/v1/evaluation/branches/{demo.committee}/publish",
                            json={"period": PERIOD}), 404, "找不到该党支部")
        assert ok(client.get(f"/api/v1/evaluation/branches/{empty}"))["counts"]["members"] == 0
        refused(client.post(f"/api/v1/evaluation/branches/{empty}/publish",
                            json={"period": PERIOD}), 400, "没有在此评议的党员，无需公示")


def test_bad_input_is_answered_in_chinese(client, demo):
    with as_of(at(11, 26)):
        login(client, demo, MEMBER)
        for period in ("2026-13", "下下月", "0000-01", "2026-11-01"):
            refused(client.get("/api/v1/evaluation/me", params={"period": period}), 400,
                    "请写成 2026-11 这样的格式")
        assert ok(client.get("/api/v1/evaluation/me",
                             params={"period": "２０２６-１１"}))["period"] == PERIOD
        refused(client.get("/api/v1/evaluation/me", params={"period": "2020-01"}), 400,
                "2020-01 没有生效的积分方案")
        refused(client.post("/api/v1/evaluation/me/self", json={
            "period": PERIOD, "adjustments": {"nonsense": 1}}), 400, "方案中没有维度“nonsense”")
        assert client.post("/api/v1/evaluation/me/self", json={
            "period": PERIOD, "adjustments": {"political": 1e9}}).status_code == 422
        refused(client.post("/api/v1/declarations", json={
            "indicator_code": "volunteering", "description": "未来的事",
            "occurred_on": "2026-12-30"}), 400, "发生日期不能晚于今天")
        refused(client.post("/api/v1/declarations", json={
            "indicator_code": "online_study", "description": "学习",
            "occurred_on": "2026-11-15"}), 400, "不是申报类指标")
        refused(client.post("/api/v1/declarations", json={
            "indicator_code": "volunteering", "description": "  ",
            "occurred_on": "2026-11-15"}), 400, "请写明申报说明")
        refused(client.post("/api/v1/evaluation/me/objections", json={
            "period": PERIOD, "reason": "不服"}), 400, "本月评价尚未公示")
        # Nothing refused left a row behind.
        assert ok(client.get("/api/v1/evaluation/me"))["state"] == "open"


def test_spot_checks_through_the_api(client, db, demo):
    with as_of(at(11, 20)):
        entries = []
        for userid in (MEMBER, OTHER, THIRD):
            login(client, demo, userid)
            entries.append(declare(client, "volunteering", "社区志愿服务")["entry_id"])
        login(client, demo, REVIEWER)
        for entry_id in entries:
            ok(client.post(f"/api/v1/declarations/reviews/{entry_id}", json={"approve": True}))
        body = {"org_id": demo.committee, "period": PERIOD, "size": 2, "seed": 7}
        login(client, demo, SECRETARY)
        refused(client.post("/api/v1/evaluation/spot-checks", json=body), 403,
                "只有党委可以组织抽查")
        login(client, demo, COMMITTEE)
        refused(client.post("/api/v1/evaluation/spot-checks", json={**body, "percent": 50}),
                400, "请指定抽查数量或抽查比例（二选一）")
        check = ok(client.post("/api/v1/evaluation/spot-checks", json=body), 201)
        again = ok(client.post("/api/v1/evaluation/spot-checks", json=body), 201)
        assert [i["entry_id"] for i in again["items"]] == [i["entry_id"] for i in check["items"]]
        assert (check["seed"], check["population"], len(check["items"])) == (7, 3, 2)
        assert "抽取 2 条（随机种子 7）" in check["message"]
        failing = check["items"][0]
        result_url = f"/api/v1/evaluation/spot-checks/items/{failing['id']}"
        refused(client.post(result_url, json={"passed": False}), 400, "抽查不通过时须写明理由")
        done = ok(client.post(result_url, json={"passed": False, "reason": "照片为网络图片"}))
        assert done["passed"] is False and done["reversal_entry_id"]
        refused(client.post(result_url, json={"passed": True}), 409, "已登记结果")
        shown = ok(client.get(f"/api/v1/evaluation/spot-checks/{check['id']}"))
        assert shown["items"][0]["result_reason"] == "照片为网络图片"
        login(client, demo, MEMBER)
        refused(client.get(f"/api/v1/evaluation/spot-checks/{check['id']}"), 403,
                "只有党委可以查看抽查")
    with Session(db) as s:
        reversal = s.get(LedgerEntry, done["reversal_entry_id"])
        assert reversal is not None and reversal.reversal_of_id == failing["entry_id"]
        assert reversal.points == -3
        assert s.exec(select(LedgerEntry).where(
            col(LedgerEntry.reversal_of_id).is_not(None))).all() == [reversal]
