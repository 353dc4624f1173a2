"""The activities, leave and approvals API on a real database: scope, roles, outbox rows in the same
transaction, audited manual check-ins, and attendance made final once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from app.config import Settings
from app.db import utcnow, write_session
from app.main import create_app
from app.models import (
    Activity,
    AuditLog,
    CheckIn,
    CheckInMethod,
    LeaveRequest,
    LeaveStatus,
    LedgerEntry,
    Organization,
    OutboxMessage,
    Person,
)
from app.services.activities import create_activity, request_leave
from tests.factories import build_org


@pytest.fixture
def org(db: Engine) -> dict[str, object]:
    """Two branches of four; the first member of each is its secretary."""
    with write_session(db) as s:
        built = build_org(s, branches=2, members=4)
        b1, b2 = built.branches
        return {"b1": b1.id, "b2": b2.id,
                "one": [p.id for p in built.members[b1.id]],
                "two": [p.id for p in built.members[b2.id]]}


@pytest.fixture
def client(settings_env: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings_env)) as client:
        yield client


def login(client: TestClient, person_id: int) -> None:
    answer = client.post("/api/v1/auth/dev", json={"person_id": person_id})
    assert answer.status_code == 200, answer.text


def new_activity(db: Engine, branch_id: int, *, starts_in: timedelta = timedelta(days=2),
                 title: str = "十一月主题党日") -> int:
    """A 主题党日 of the branch, planned by the system, starting `starts_in` from now."""
    with write_session(db) as s:
        branch = s.get(Organization, branch_id)
        assert branch is not None
        activity = create_activity(session=s, branch=branch, kind="主题党日", title=title,
                                   starts_at=utcnow() + starts_in, place="党员活动室")
        assert activity.id is not None
        return activity.id


def leave_before_start(db: Engine, activity_id: int, person_id: int) -> int:
    """A pending 事假 asked before the (already started) activity began."""
    with write_session(db) as s:
        activity = s.get(Activity, activity_id)
        person = s.get(Person, person_id)
        assert activity is not None and person is not None
        leave = request_leave(session=s, person=person, activity_id=activity_id, kind="事假",
                              reason="出差在外", now=activity.starts_at - timedelta(hours=1))
        assert leave.id is not None
        return leave.id


def outbox(db: Engine, kind: str) -> list[OutboxMessage]:
    with Session(db) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind)
                           .order_by(col(OutboxMessage.id))))


def ledger_count(db: Engine) -> int:
    with Session(db) as s:
        return s.exec(select(func.count()).select_from(LedgerEntry)).one()


def userid(db: Engine, person_id: int) -> str:
    with Session(db) as s:
        person = s.get(Person, person_id)
        assert person is not None and person.dingtalk_userid
        return person.dingtalk_userid


# ---- seeing activities ----------------------------------------------------------------------


def test_asking_without_a_session_is_401(client, org):
    answer = client.get("/api/v1/activities")
    assert answer.status_code == 401
    assert answer.json()["detail"] == "请先登录：请从钉钉或企业微信中打开本页面"


def test_a_member_sees_only_their_own_branch_activities(client, db, org):
    mine = new_activity(db, org["b1"], title="第一支部主题党日")
    new_activity(db, org["b2"], title="第二支部主题党日")
    past = new_activity(db, org["b1"], starts_in=-timedelta(hours=5), title="上月主题党日")
    login(client, org["one"][2])

    upcoming = client.get("/api/v1/activities").json()
    assert upcoming["scope"] == "upcoming"
    assert upcoming["can_create"] is False
    assert [a["id"] for a in upcoming["items"]] == [mine]
    item = upcoming["items"][0]
    assert (item["title"], item["status"], item["status_label"]) == (
        "第一支部主题党日", "planned", "未开始")
    assert item["my_leave"] is None and item["my_checkin"] is None
    assert item["can_request_leave"] is True

    earlier = client.get("/api/v1/activities", params={"scope": "past"}).json()
    assert [a["id"] for a in earlier["items"]] == [past]
    assert earlier["items"][0]["can_request_leave"] is False
    assert earlier["items"][0]["my_status"] == "未签到"
    assert client.get("/api/v1/activities", params={"scope": "soon"}).status_code == 422


def test_another_branch_activity_is_not_found(client, db, org):
    theirs = new_activity(db, org["b2"])
    login(client, org["one"][1])
    answer = client.get(f"/api/v1/activities/{theirs}")
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"找不到活动 {theirs}"
    assert client.get("/api/v1/activities/999999").status_code == 404
    # Their secretary's tools are refused too, with the reason.
    login(client, org["one"][0])
    refused = client.post(f"/api/v1/activities/{theirs}/close")
    assert refused.status_code == 403
    assert "只有该支部的书记" in refused.json()["detail"]


def test_a_member_gets_no_attendance_table_and_a_secretary_does(client, db, org):
    activity_id = new_activity(db, org["b1"])
    login(client, org["one"][1])
    member_view = client.get(f"/api/v1/activities/{activity_id}").json()
    assert member_view["is_manager"] is False and member_view["attendance"] is None
    assert member_view["is_expected"] is True
    assert member_view["can_close"] is member_view["can_cancel"] is False

    login(client, org["one"][0])
    view = client.get(f"/api/v1/activities/{activity_id}").json()
    assert view["is_manager"] is True
    assert view["can_close"] and view["can_cancel"]
    assert view["can_finalize"] is False  # not started yet
    sheet = view["attendance"]
    assert [r["person_id"] for r in sheet["rows"]] == org["one"]
    assert sheet["counts"] == {"expected": 4, "checked_in": 0, "late": 0, "visitors": 0,
                               "approved_leave": 0, "pending_leave": 0, "missing": 4}
    assert sheet["final"] is False and sheet["outcomes"] is None
    assert [r["person_id"] for r in sheet["rows"] if r["can_mark_present"]] == org["one"][1:]


# ---- creating -------------------------------------------------------------------------------


def test_a_member_may_not_create_an_activity(client, db, org):
    login(client, org["one"][1])
    answer = client.post("/api/v1/activities", json={
        "kind": "主题党日", "title": "自己发起", "starts_at": "2026-12-01T14:30:00"})
    assert answer.status_code == 403
    assert answer.json()["detail"] == "您不能为“第1党支部”发起活动"
    with Session(db) as s:
        assert s.exec(select(func.count()).select_from(Activity)).one() == 0


def test_a_secretary_creates_an_activity_for_their_branch(client, db, org):
    login(client, org["one"][0])
    answer = client.post("/api/v1/activities", json={
        "kind": "支部党员大会", "title": "  年终总结  ", "starts_at": "2026-12-01T14:30:00",
        "place": "三楼会议室", "geofence": {"lat": 39.9, "lng": 116.4, "radius_m": 300}})
    assert answer.status_code == 201, answer.text
    detail = answer.json()
    activity = detail["activity"]
    assert (activity["kind"], activity["title"], activity["place"]) == (
        "支部党员大会", "年终总结", "三楼会议室")
    # A zone-less time is Beijing time.
    assert datetime.fromisoformat(activity["starts_at"]) == datetime.fromisoformat(
        "2026-12-01T06:30:00+00:00")
    assert detail["organization_name"] == "第1党支部"
    assert detail["has_geofence"] is True
    assert detail["attendance"]["counts"]["expected"] == 4
    with Session(db) as s:
        stored = s.get(Activity, activity["id"])
        assert stored is not None and stored.organization_id == org["b1"]
        assert stored.created_by_id == org["one"][0]


def test_creating_refuses_bad_input_in_chinese(client, db, org):
    login(client, org["one"][0])
    base = {"kind": "主题党日", "starts_at": "2026-12-01T14:30:00"}
    wrong_kind = client.post("/api/v1/activities", json=base | {"kind": "聚餐"})
    assert wrong_kind.status_code == 400
    assert wrong_kind.json()["detail"].startswith("活动类型应为：主题党日")
    backwards = client.post("/api/v1/activities",
                            json=base | {"ends_at": "2026-12-01T13:00:00"})
    assert backwards.status_code == 400
    assert backwards.json()["detail"] == "结束时间必须晚于开始时间"
    theirs = client.post("/api/v1/activities", json=base | {"branch_ids": [org["b2"]]})
    assert theirs.status_code == 403
    assert theirs.json()["detail"] == "您不能为“第2党支部”发起活动"
    nowhere = client.post("/api/v1/activities", json=base | {"branch_ids": [999999]})
    assert nowhere.status_code == 404
    assert client.post("/api/v1/activities", json={"kind": "主题党日"}).status_code == 422
    ancient = client.post("/api/v1/activities", json=base | {"starts_at": "0001-01-01T00:10:00"})
    assert ancient.status_code == 400
    nul = client.post("/api/v1/activities", json=base | {"title": "会\x00议"})
    assert nul.status_code in (201, 400)  # SQLite stores it; PostgreSQL refuses, never a 500


# ---- leave ----------------------------------------------------------------------------------


def test_asking_for_leave_queues_the_card_to_the_secretary(client, db, org):
    activity_id = new_activity(db, org["b1"])
    member = org["one"][2]
    login(client, member)
    answer = client.post("/api/v1/leave-requests", json={
        "activity_id": activity_id, "kind": "事假", "reason": "出差在外"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["kind"], body["status"], body["status_label"]) == ("事假", "pending", "待审批")
    assert body["notified"] == 1
    assert body["message"] == (f"已提交请假申请 Q{body['id']}，等待支部书记审批，"
                               "结果会私信通知您。")
    cards = outbox(db, "leave-requested")
    assert [m.target for m in cards] == [f"user:{userid(db, org['one'][0])}"]
    assert cards[0].period == f"leave-{body['id']}"
    assert "出差在外" in cards[0].payload["text"]
    with Session(db) as s:
        activity = s.get(Activity, activity_id)
        assert activity is not None
        local = activity.starts_at.astimezone(ZoneInfo("Asia/Shanghai"))
    when = f"{local.month}月{local.day}日 {local:%H:%M}"  # business time, as the chat says it
    assert f"「十一月主题党日」{when}\n" in cards[0].payload["text"]
    assert [b["label"] for b in cards[0].payload["buttons"]] == ["批准", "驳回"]

    again = client.post("/api/v1/leave-requests", json={
        "activity_id": activity_id, "kind": "病假", "reason": "身体不适"})
    assert again.status_code == 409
    assert again.json()["detail"] == f"您已为该活动请过假（编号 Q{body['id']}，待审批）"
    assert len(outbox(db, "leave-requested")) == 1

    mine = client.get("/api/v1/leave-requests").json()
    assert mine["scope"] == "mine" and [i["id"] for i in mine["items"]] == [body["id"]]
    view = client.get(f"/api/v1/activities/{activity_id}").json()["activity"]
    assert view["my_leave"]["code"] == f"Q{body['id']}"
    assert view["my_status"] == "请假待审批" and view["can_request_leave"] is False


def test_leave_is_refused_for_another_branch_and_for_bad_input(client, db, org):
    theirs = new_activity(db, org["b2"])
    started = new_activity(db, org["b1"], starts_in=-timedelta(minutes=5))
    login(client, org["one"][1])
    other = client.post("/api/v1/leave-requests", json={
        "activity_id": theirs, "kind": "事假", "reason": "出差"})
    assert other.status_code == 404
    late = client.post("/api/v1/leave-requests", json={
        "activity_id": started, "kind": "事假", "reason": "出差"})
    assert late.status_code == 409
    assert late.json()["detail"].startswith("活动已经开始，不能再请假")
    no_reason = client.post("/api/v1/leave-requests", json={
        "activity_id": new_activity(db, org["b1"]), "kind": "病假", "reason": "  "})
    assert no_reason.status_code == 400 and no_reason.json()["detail"] == "请写明请假理由"
    wrong_kind = client.post("/api/v1/leave-requests", json={
        "activity_id": theirs, "kind": "婚假", "reason": "结婚"})
    assert wrong_kind.status_code == 400
    assert wrong_kind.json()["detail"] == "请假类型应为：病假、事假、公假"
    assert outbox(db, "leave-requested") == []


def _ask_leave(client: TestClient, activity_id: int, member: int) -> int:
    login(client, member)
    answer = client.post("/api/v1/leave-requests", json={
        "activity_id": activity_id, "kind": "病假", "reason": "发烧"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_the_secretary_approves_and_the_member_is_told_once(client, db, org):
    leave_id = _ask_leave(client, new_activity(db, org["b1"]), org["one"][3])
    login(client, org["one"][0])
    pending = client.get("/api/v1/leave-requests", params={"scope": "pending"}).json()
    assert [(i["id"], i["person_name"]) for i in pending["items"]] == [
        (leave_id, "测试党委0-3")]

    answer = client.post(f"/api/v1/leave-requests/{leave_id}/approve")
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] is True
    assert answer.json()["message"] == f"已批准请假申请 Q{leave_id}。"
    with Session(db) as s:
        leave = s.get(LeaveRequest, leave_id)
        assert leave is not None and leave.status == LeaveStatus.APPROVED
        assert leave.decided_by_id == org["one"][0]
    told = outbox(db, "leave-decided")
    assert [m.target for m in told] == [f"user:{userid(db, org['one'][3])}"]
    assert told[0].payload["text"] == f"您的请假申请 Q{leave_id} 已批准。"

    again = client.post(f"/api/v1/leave-requests/{leave_id}/approve")
    assert again.status_code == 200
    assert again.json()["changed"] is False
    assert again.json()["message"] == f"请假申请 Q{leave_id} 此前已批准，无需重复操作。"
    assert len(outbox(db, "leave-decided")) == 1
    assert client.get("/api/v1/leave-requests",
                      params={"scope": "pending"}).json()["items"] == []


def test_only_the_branch_secretary_may_decide(client, db, org):
    leave_id = _ask_leave(client, new_activity(db, org["b1"]), org["one"][3])
    login(client, org["two"][0])  # the other branch's secretary
    other = client.post(f"/api/v1/leave-requests/{leave_id}/approve")
    assert other.status_code == 403
    assert other.json()["detail"] == "只有该支部的书记可以审批这条请假申请"
    assert client.get("/api/v1/leave-requests",
                      params={"scope": "pending"}).json()["items"] == []
    login(client, org["one"][1])  # a member of the branch
    assert client.post(f"/api/v1/leave-requests/{leave_id}/approve").status_code == 403
    member_pending = client.get("/api/v1/leave-requests", params={"scope": "pending"})
    assert member_pending.status_code == 403
    assert member_pending.json()["detail"] == "只有支部书记可以审批请假申请"
    assert client.post("/api/v1/leave-requests/999999/approve").status_code == 404
    with Session(db) as s:
        leave = s.get(LeaveRequest, leave_id)
        assert leave is not None and leave.status == LeaveStatus.PENDING
    assert outbox(db, "leave-decided") == []


def test_a_secretary_may_not_approve_their_own_leave(client, db, org):
    leave_id = _ask_leave(client, new_activity(db, org["b1"]), org["one"][0])
    answer = client.post(f"/api/v1/leave-requests/{leave_id}/approve")
    assert answer.status_code == 403
    assert answer.json()["detail"] == "不能审批自己的请假申请"


def test_rejecting_needs_a_reason(client, db, org):
    leave_id = _ask_leave(client, new_activity(db, org["b1"]), org["one"][2])
    login(client, org["one"][0])
    bare = client.post(f"/api/v1/leave-requests/{leave_id}/reject", json={"reason": " "})
    assert bare.status_code == 400
    assert bare.json()["detail"].startswith("驳回时请写明理由")
    assert client.post(f"/api/v1/leave-requests/{leave_id}/reject").status_code == 422
    assert outbox(db, "leave-decided") == []

    answer = client.post(f"/api/v1/leave-requests/{leave_id}/reject",
                         json={"reason": "本次会议需全员参加"})
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["decision_reason"]) == (
        "rejected", "本次会议需全员参加")
    assert outbox(db, "leave-decided")[0].payload["text"] == (
        f"您的请假申请 Q{leave_id} 已驳回，理由：本次会议需全员参加。")
    flip = client.post(f"/api/v1/leave-requests/{leave_id}/approve")
    assert flip.status_code == 409
    assert f"请假申请 Q{leave_id} " in flip.json()["detail"]
    assert flip.json()["detail"].endswith("已驳回，不能更改")


# ---- managing -------------------------------------------------------------------------------


def test_marking_present_by_hand_is_audited(client, db, org):
    activity_id = new_activity(db, org["b1"], starts_in=-timedelta(minutes=20))
    absent = org["one"][2]
    login(client, org["one"][1])
    assert client.post(f"/api/v1/activities/{activity_id}/attendees/{absent}/present",
                       json={"reason": "帮忙"}).status_code == 403
    login(client, org["one"][0])
    url = f"/api/v1/activities/{activity_id}/attendees/{absent}/present"
    no_reason = client.post(url, json={"reason": ""})
    assert no_reason.status_code == 400
    assert no_reason.json()["detail"] == "补登签到请写明原因，例如：现场签到时手机没电"
    own = client.post(f"/api/v1/activities/{activity_id}/attendees/{org['one'][0]}/present",
                      json={"reason": "忘了扫码"})
    assert own.status_code == 403  # not this person's to do, whatever they write
    assert own.json()["detail"] == "不能为自己补登签到，请由其他支委或上级组织办理"

    answer = client.post(url, json={"reason": "现场签到时手机没电"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] is True
    assert answer.json()["message"] == "已为测试党委0-2补登签到。"
    with Session(db) as s:
        check = s.exec(select(CheckIn).where(CheckIn.activity_id == activity_id)).one()
        assert (check.person_id, check.method, check.marked_by_id, check.reason) == (
            absent, CheckInMethod.MANUAL, org["one"][0], "现场签到时手机没电")
        audit = s.exec(select(AuditLog).where(AuditLog.action == "mark_present")).one()
        assert audit.actor_id == org["one"][0]
        assert audit.after == {"activity_id": activity_id, "person_id": absent,
                               "reason": "现场签到时手机没电"}
    again = client.post(url, json={"reason": "再来一次"})
    assert again.json()["created"] is False
    outsider = client.post(f"/api/v1/activities/{activity_id}/attendees/{org['two'][1]}/present",
                           json={"reason": "路过"})
    assert outsider.status_code == 400
    assert outsider.json()["detail"] == "该人员不在本次活动的应到人员名单中"

    row = next(r for r in client.get(f"/api/v1/activities/{activity_id}").json()
               ["attendance"]["rows"] if r["person_id"] == absent)
    assert (row["manual"], row["can_mark_present"]) == (True, False)


def test_finalizing_twice_writes_the_ledger_once(client, db, org):
    activity_id = new_activity(db, org["b1"], starts_in=-timedelta(minutes=40))
    secretary, present, on_leave, absent = org["one"]
    leave_id = leave_before_start(db, activity_id, on_leave)
    login(client, secretary)
    assert client.post(f"/api/v1/leave-requests/{leave_id}/approve").status_code == 200
    assert client.post(f"/api/v1/activities/{activity_id}/attendees/{present}/present",
                       json={"reason": "补登"}).status_code == 200
    login(client, present)
    assert client.post(f"/api/v1/activities/{activity_id}/finalize").status_code == 403
    before = ledger_count(db)

    login(client, secretary)
    first = client.post(f"/api/v1/activities/{activity_id}/finalize")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["changed"] is True
    assert body["counts"] == {"present": 1, "late": 0, "excused": 1, "absent": 2}
    written = ledger_count(db) - before
    assert written == body["entries_written"] == 3  # one present, two absent
    assert body["message"] == ("考勤已确认：出席 1 人、迟到 0 人、请假 1 人、缺席 2 人，"
                               "记入积分 3 条。")

    second = client.post(f"/api/v1/activities/{activity_id}/finalize")
    assert second.status_code == 200
    assert second.json()["changed"] is False
    assert second.json()["message"] == "考勤此前已确认，无需重复操作。"
    assert second.json()["entries_written"] == 0
    assert second.json()["counts"] == body["counts"]
    assert ledger_count(db) == before + written

    sheet = client.get(f"/api/v1/activities/{activity_id}").json()["attendance"]
    assert sheet["final"] is True
    assert {r["person_id"]: r["outcome_label"] for r in sheet["rows"]} == {
        secretary: "缺席", present: "出席", on_leave: "请假", absent: "缺席"}
    assert not any(r["can_mark_present"] for r in sheet["rows"])
    late_mark = client.post(f"/api/v1/activities/{activity_id}/attendees/{absent}/present",
                            json={"reason": "补登"})
    assert late_mark.status_code == 409
    assert late_mark.json()["detail"] == "活动考勤已确认，不能再补登签到"


def test_finalizing_before_the_start_is_refused(client, db, org):
    activity_id = new_activity(db, org["b1"])
    login(client, org["one"][0])
    answer = client.post(f"/api/v1/activities/{activity_id}/finalize")
    assert answer.status_code == 409
    assert answer.json()["detail"] == "活动尚未开始，不能确认考勤"


def test_closing_and_cancelling(client, db, org):
    activity_id = new_activity(db, org["b1"], starts_in=-timedelta(minutes=5))
    login(client, org["one"][0])
    closed = client.post(f"/api/v1/activities/{activity_id}/close")
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["status_label"]) == ("closed", "已结束")
    no_reason = client.post(f"/api/v1/activities/{activity_id}/cancel", json={})
    assert no_reason.status_code == 400
    assert no_reason.json()["detail"] == "取消活动请写明原因"
    cancelled = client.post(f"/api/v1/activities/{activity_id}/cancel",
                            json={"reason": "上级会议冲突"})
    assert cancelled.json()["status_label"] == "已取消"
    refused = client.post(f"/api/v1/activities/{activity_id}/finalize")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "活动已取消，无需确认考勤"
    with Session(db) as s:
        audit = s.exec(select(AuditLog).where(AuditLog.action == "cancel")).one()
        assert audit.after == {"status": "cancelled", "reason": "上级会议冲突"}


def test_taking_someone_off_the_expected_attendees(client, db, org):
    activity_id = new_activity(db, org["b1"])
    member = org["one"][3]
    login(client, org["one"][0])
    url = f"/api/v1/activities/{activity_id}/attendees/{member}"
    off = client.put(url, json={"expected": False})
    assert off.status_code == 200
    assert off.json()["message"] == "已将测试党委0-3移出应到人员。"
    rows = client.get(f"/api/v1/activities/{activity_id}").json()["attendance"]["rows"]
    assert member not in [r["person_id"] for r in rows]
    assert client.put(f"/api/v1/activities/{activity_id}/attendees/999999",
                      json={"expected": True}).status_code == 404
    login(client, member)
    assert client.get(f"/api/v1/activities/{activity_id}").status_code == 404
    assert client.put(url, json={"expected": True}).status_code == 403


def test_only_people_the_secretary_manages_may_be_added(client, db, org):
    activity_id = new_activity(db, org["b1"])
    outsider = org["two"][2]
    login(client, org["one"][0])
    refused = client.put(f"/api/v1/activities/{activity_id}/attendees/{outsider}",
                         json={"expected": True})
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("只能添加您所管理的党组织中的人员")
    own = client.put(f"/api/v1/activities/{activity_id}/attendees/{org['one'][1]}",
                     json={"expected": True})
    assert own.status_code == 200 and own.json()["expected"] is True
    login(client, outsider)
    assert client.get(f"/api/v1/activities/{activity_id}").status_code == 404
