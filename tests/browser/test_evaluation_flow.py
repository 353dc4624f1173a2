"""The monthly evaluation in a phone browser: a member confirms the self-evaluation (late), the
secretary sees it on the branch page and takes the self scores."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import utcnow
from app.domain.periods import month_key, previous_month
from app.models import Person
from app.services import orgs
from app.services.demo import DEMO_BRANCHES, DEMO_COMMITTEE, seed_demo, seed_demo_activity
from app.services.people import find_person

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _login(page: Page, base: str, person: Person, next_path: str) -> None:
    page.goto(f"{base}/h5/login?next={next_path.replace('?', '%3F').replace('=', '%3D')}")
    page.locator(f'button[data-person="{person.id}"]').click()
    page.wait_for_url(f"{base}{next_path}")


def test_a_member_confirms_and_the_secretary_takes_the_self_scores(
    live_server: str, page: Page, db: Engine, settings_env
) -> None:
    base = live_server
    with Session(db, expire_on_commit=False) as session:
        seed_demo(session=session)
        seed_demo_activity(session=session, now=utcnow(), tz=settings_env.tz)  # and the scheme
        session.commit()
        committee = orgs.child(session, None, DEMO_COMMITTEE)
        branch = orgs.child(session, committee, DEMO_BRANCHES[0][0])
        member = find_person(session=session, key="demo-dt-005")
        secretary = find_person(session=session, key="demo-dt-001")
    assert branch is not None and member is not None and secretary is not None
    # Last month: its self-evaluation window has passed, so the confirmation is recorded late.
    period = previous_month(month_key(utcnow(), settings_env.tz))
    page.on("dialog", lambda dialog: dialog.accept())
    _login(page, base, member, f"/h5/evaluation?period={period}")
    expect(page.locator("#pp-self-form")).to_be_visible()
    page.locator("#pp-self-form button[type=submit]").click()
    expect(page.locator("#pp-eval-self")).to_contain_text("逾期")
    expect(page.locator("#pp-self-form")).to_have_count(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "evaluation_1_member.png"), full_page=True)

    page.context.clear_cookies()
    _login(page, base, secretary, f"/h5/evaluation/branches/{branch.id}?period={period}")
    expect(page.locator("#pp-count-self")).to_contain_text("1/")
    page.locator("#pp-accept").click()
    expect(page.locator("#pp-count-scored")).to_contain_text("1/")
    page.screenshot(path=str(SHOTS / "evaluation_2_secretary.png"), full_page=True)
