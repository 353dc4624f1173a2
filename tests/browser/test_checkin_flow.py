"""The demo meeting end to end in a phone browser: screen, scan, leave in the chat, final points."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings, get_settings
from app.db import utcnow
from app.models import Activity, LeaveRequest, LeaveStatus, LedgerEntry, Organization, Person
from app.services import orgs
from app.services.activities import create_activity
from app.services.demo import DEMO_BRANCHES, DEMO_COMMITTEE, seed_demo, seed_demo_activity

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def settings_env(settings_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test settings with the shortest QR rotation, so the screen visibly rotates."""
    monkeypatch.setenv("CHECKIN_QR_ROTATE_S", "5")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _demo(db: Engine) -> tuple[int, list[Person]]:
    """The demo organisation and a 主题党日 of its first branch starting in 20 minutes."""
    with Session(db, expire_on_commit=False) as session:
        seed_demo(session=session)
        seed_demo_activity(session=session, now=utcnow(), tz=get_settings().tz)
        committee = orgs.child(session, None, DEMO_COMMITTEE)
        branch = orgs.child(session, committee, DEMO_BRANCHES[0][0])
        assert branch is not None
        meeting = create_activity(session=session, branch=branch, kind="主题党日",
                                  title="浏览器全流程演练", starts_at=utcnow()
                                  + timedelta(minutes=20), place="党员活动室")
        session.commit()
        people = list(session.exec(
            select(Person).join(Organization, col(Organization.id) == Person.organization_id)
            .where(col(Organization.path).startswith(branch.path)).order_by(col(Person.id))))
        assert meeting.id is not None
        return meeting.id, people


def _login(page: Page, base: str, person: Person, next_path: str) -> None:
    page.goto(f"{base}/h5/login?next={next_path}")
    page.locator(f'button[data-person="{person.id}"]').click()
    page.wait_for_url(f"{base}{next_path}")


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"checkin_flow_{name}.png"), full_page=True)


def test_a_meeting_from_screen_to_points(live_server: str, page: Page, db: Engine) -> None:
    base = live_server
    activity_id, people = _demo(db)
    secretary, present, on_leave = people[0], people[1], people[2]
    assert secretary.dingtalk_userid == "demo-dt-001"

    # The room screen shows a code that changes by itself.
    _login(page, base, secretary, f"/h5/activities/{activity_id}/screen")
    qr = page.locator("#pp-screen-qr")
    expect(qr).to_be_visible()
    first = qr.get_attribute("src")
    expect(qr).not_to_have_attribute("src", first or "", timeout=15_000)
    expect(page.locator("#pp-screen-in")).to_have_text("0")
    _shot(page, "1_screen")
    state = page.request.get(f"{base}/api/v1/activities/{activity_id}/screen").json()
    scan = urlsplit(state["checkin_url"])

    # A member scans it in the platform's webview: checked in, as themselves, on time.
    _login(page, base, present, "/h5/me")
    page.goto(f"{base}{scan.path}?{scan.query}")
    expect(page.locator("#pp-checkin-name")).to_have_text(present.name)
    expect(page.locator("#pp-checkin-status")).to_contain_text("准时")
    _shot(page, "2_checked_in")

    # Another asks for leave in the chat simulator; the secretary approves from the card.
    page.goto(f"{base}/dev/chat")
    page.locator("#person").select_option(str(on_leave.id))
    page.locator("#text").fill(f"/请假 {activity_id} 事假 出差在外")
    page.locator("#text").press("Enter")
    expect(page.locator("#log .bot").last).to_contain_text("已提交请假申请")
    page.locator("#person").select_option(str(secretary.id))
    card = page.locator("#feed .post", has_text="申请请假").last
    expect(card).to_be_visible(timeout=10_000)
    card.get_by_role("button", name="批准").click()
    expect(page.locator("#log .bot").last).to_contain_text("已批准")
    _shot(page, "3_leave_approved")
    with Session(db) as session:
        leave = session.exec(select(LeaveRequest).where(
            LeaveRequest.person_id == on_leave.id)).one()
        assert leave.status == LeaveStatus.APPROVED
        # The meeting has begun (the clock moves on): attendance can be made final.
        activity = session.get(Activity, activity_id)
        assert activity is not None
        activity.starts_at = utcnow() - timedelta(minutes=1)
        session.add(activity)
        session.commit()

    # The secretary makes attendance final on the activity page: points follow, once.
    _login(page, base, secretary, f"/h5/activities/{activity_id}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="确认考勤").click()
    expect(page.get_by_text("缺席").first).to_be_visible(timeout=10_000)
    _shot(page, "4_final")
    entries = _attendance_entries(db, activity_id)
    members = {p.id for p in people if p.member_type != "masses"}
    assert entries[present.id] == [("attendance_present", 3)]
    assert on_leave.id not in entries
    absent = members - {present.id, on_leave.id}
    assert {pid for pid, rows in entries.items() if rows == [("attendance_absent", -5)]} == absent
    again = page.request.post(f"{base}/api/v1/activities/{activity_id}/finalize")
    assert again.ok
    assert _attendance_entries(db, activity_id) == entries

    # The member sees it on their phone: points with the breakdown.
    _login(page, base, present, "/h5/me")
    expect(page.locator("body")).to_contain_text(present.name)
    expect(page.locator("body")).to_contain_text("纪律合格")
    expect(page.locator("svg[role=img]").first).to_be_visible()
    _shot(page, "5_my_points")


def _attendance_entries(db: Engine, activity_id: int) -> dict[int, list[tuple[str, int]]]:
    """Ledger entries written by making the activity final, by person."""
    with Session(db) as session:
        activity = session.get(Activity, activity_id)
        assert activity is not None
        rows = session.exec(select(LedgerEntry).where(
            col(LedgerEntry.reason).startswith(f"{activity.kind}「{activity.title}」"))).all()
        found: dict[int, list[tuple[str, int]]] = {}
        for row in rows:
            found.setdefault(row.person_id, []).append((row.indicator_code, int(row.points)))
        return found
