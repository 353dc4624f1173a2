"""The activities, activity and approvals H5 pages: Chinese labels, and each role's buttons only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.config import Settings
from app.db import utcnow, write_session
from app.main import create_app
from app.models import Organization, Person
from app.services.activities import ACTIVITY_KINDS, create_activity, request_leave
from tests.factories import build_org

MANAGER_BUTTONS = (">结束签到</button>", ">确认考勤</button>", ">取消活动</button>",
                   ">补登签到</button>", ">打开签到大屏</a>", "data-action=")


@pytest.fixture
def org(db: Engine) -> dict[str, object]:
    with write_session(db) as s:
        built = build_org(s, branches=2, members=3)
        b1, b2 = built.branches
        return {"b1": b1.id, "b2": b2.id,
                "one": [p.id for p in built.members[b1.id]],
                "two": [p.id for p in built.members[b2.id]]}


@pytest.fixture
def client(settings_env: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings_env), follow_redirects=False) as client:
        yield client


def login(client: TestClient, person_id: int) -> None:
    assert client.post("/api/v1/auth/dev", json={"person_id": person_id}).status_code == 200


def new_activity(db: Engine, branch_id: int, *, starts_in: timedelta = timedelta(days=2),
                 title: str = "十一月主题党日") -> int:
    with write_session(db) as s:
        branch = s.get(Organization, branch_id)
        assert branch is not None
        activity = create_activity(session=s, branch=branch, kind="主题党日", title=title,
                                   starts_at=utcnow() + starts_in, place="党员活动室")
        assert activity.id is not None
        return activity.id


def ask_leave(db: Engine, activity_id: int, person_id: int) -> int:
    with write_session(db) as s:
        person = s.get(Person, person_id)
        assert person is not None
        leave = request_leave(session=s, person=person, activity_id=activity_id, kind="病假",
                              reason="发烧住院", now=utcnow())
        assert leave.id is not None
        return leave.id


def test_pages_send_a_stranger_to_log_in(client, org):
    answer = client.get("/h5/activities")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/h5/login?next=%2Fh5%2Factivities"


def test_a_member_sees_activities_with_status_and_no_create_form(client, db, org):
    activity_id = new_activity(db, org["b1"], title="学习二十大精神")
    new_activity(db, org["b2"], title="别的支部的活动")
    ask_leave(db, activity_id, org["one"][1])
    login(client, org["one"][1])
    page = client.get("/h5/activities")
    assert page.status_code == 200
    html = page.text
    assert "<title>组织生活</title>" in html
    assert "近期活动" in html and "往期活动" in html
    assert "主题党日「学习二十大精神」" in html
    assert f'href="/h5/activities/{activity_id}"' in html
    assert "别的支部的活动" not in html
    assert "未开始" in html and 'pp-badge-pending">待审批' in html
    assert "发起活动" not in html and "pp-create-form" not in html
    assert 'href="/h5/approvals"' not in html  # the 审批 tab is for secretaries


def test_a_secretary_gets_the_create_form_with_every_kind(client, db, org):
    login(client, org["one"][0])
    html = client.get("/h5/activities").text
    assert "本支部近期没有安排活动。" in html
    assert 'id="pp-create-form"' in html and "发起活动" in html
    for kind in ACTIVITY_KINDS:
        assert f'<option value="{kind}">{kind}</option>' in html
    assert "'/api/v1/activities'" in html
    assert 'href="/h5/approvals"' in html


def test_a_member_sees_details_and_the_leave_form_but_no_manager_buttons(client, db, org):
    activity_id = new_activity(db, org["b1"])
    login(client, org["one"][2])
    html = client.get(f"/h5/activities/{activity_id}").text
    assert "主题党日「十一月主题党日」" in html and "党员活动室" in html
    assert "我的状态" in html and "请假截止" in html
    assert 'id="pp-leave-form"' in html and "提交请假申请" in html
    for kind in ("病假", "事假", "公假"):
        assert f'<option value="{kind}">{kind}</option>' in html
    for label in MANAGER_BUTTONS:
        assert label not in html
    assert "/screen" not in html and "window.prompt" not in html


def test_after_asking_for_leave_the_member_sees_it_pending_and_no_form(client, db, org):
    activity_id = new_activity(db, org["b1"])
    leave_id = ask_leave(db, activity_id, org["one"][2])
    login(client, org["one"][2])
    html = client.get(f"/h5/activities/{activity_id}").text
    assert f"请假申请 Q{leave_id}（病假）" in html
    assert 'pp-badge-pending">待审批' in html
    assert "pp-leave-form" not in html


def test_a_secretary_sees_the_attendance_table_and_the_buttons(client, db, org):
    upcoming = new_activity(db, org["b1"])
    login(client, org["one"][0])
    html = client.get(f"/h5/activities/{upcoming}").text
    assert "考勤管理" in html and "签到情况" in html
    assert f'href="/h5/activities/{upcoming}/screen"' in html and "打开签到大屏" in html
    assert 'data-action="close">结束签到</button>' in html
    assert 'data-action="cancel">取消活动</button>' in html
    # Every expected attendee but the secretary themselves: nobody vouches for their own points.
    assert html.count('data-action="mark"') == 2
    assert f'data-action="mark" data-person="{org["one"][0]}"' not in html
    assert 'data-action="finalize"' not in html  # not before the start
    assert "活动开始后可确认考勤" in html

    started = new_activity(db, org["b1"], starts_in=-timedelta(minutes=30))
    html = client.get(f"/h5/activities/{started}").text
    assert 'data-action="finalize">确认考勤' in html
    assert "window.prompt" in html and "window.confirm" in html


def test_a_final_activity_shows_the_outcomes_and_no_more_actions(client, db, org):
    activity_id = new_activity(db, org["b1"], starts_in=-timedelta(minutes=30))
    login(client, org["one"][0])
    assert client.post(f"/api/v1/activities/{activity_id}/attendees/{org['one'][1]}/present",
                       json={"reason": "手机没电"}).status_code == 200
    assert client.post(f"/api/v1/activities/{activity_id}/finalize").status_code == 200
    html = client.get(f"/h5/activities/{activity_id}").text
    assert "考勤结果" in html and "考勤已确认" in html
    assert 'pp-badge-ontime">出席' in html and 'pp-badge-absent">缺席' in html
    assert "补登" in html  # the manual check-in is marked as such
    for label in MANAGER_BUTTONS:
        assert label not in html

    login(client, org["one"][1])
    html = client.get(f"/h5/activities/{activity_id}").text
    assert "考勤结果：" in html and 'pp-badge-ontime">出席' in html
    assert "（书记补登）" in html


def test_another_branch_activity_page_is_not_found(client, db, org):
    theirs = new_activity(db, org["b2"])
    login(client, org["one"][1])
    answer = client.get(f"/h5/activities/{theirs}")
    assert answer.status_code == 404
    assert f"找不到活动 {theirs}" in answer.text


def test_approvals_list_the_pending_requests_with_both_buttons(client, db, org):
    activity_id = new_activity(db, org["b1"], title="支部党员大会筹备")
    leave_id = ask_leave(db, activity_id, org["one"][2])
    login(client, org["one"][0])
    html = client.get("/h5/approvals").text
    assert "<title>请假审批</title>" in html
    assert f'id="pp-leave-{leave_id}"' in html
    assert "测试党委0-2 · 病假" in html and "理由：发烧住院" in html
    assert f"编号 Q{leave_id}" in html and "支部党员大会筹备" in html
    assert f'data-action="approve" data-leave="{leave_id}">批准' in html
    assert f'data-action="reject" data-leave="{leave_id}">驳回' in html

    assert client.post(f"/api/v1/leave-requests/{leave_id}/approve").status_code == 200
    html = client.get("/h5/approvals").text
    assert "目前没有待您审批的请假申请。" in html
    assert f"pp-leave-{leave_id}" not in html


def test_approvals_are_for_secretaries_of_the_branch_only(client, db, org):
    leave_id = ask_leave(db, new_activity(db, org["b1"]), org["one"][2])
    login(client, org["one"][1])
    refused = client.get("/h5/approvals")
    assert refused.status_code == 403
    assert "只有支部书记可以审批请假申请" in refused.text
    assert "批准" not in refused.text

    login(client, org["two"][0])
    html = client.get("/h5/approvals").text
    assert "目前没有待您审批的请假申请。" in html
    assert f"pp-leave-{leave_id}" not in html
