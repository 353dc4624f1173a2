"""The demo organisation for the evaluation API and page tests: 生产第一党支部 under the xinluo
scheme, its people by demo userid, a client on the test database whose evidence goes to a
temporary directory, and a clock the requests run at (sessions are signed at that time too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from app.config import Settings
from app.db import write_session
from app.domain.scheme import preset_text
from app.main import create_app
from app.models import Organization, Person
from app.services import orgs, schemes
from app.services.demo import DEMO_COMMITTEE, seed_demo
from app.services.evaluation import confirm_self_evaluation
from app.services.evaluation_base import branch_members, find_month
from app.services.ledger import Actor, record_entry

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = "2026-11"
BRANCH = "生产第一党支部"
OTHER_BRANCH = "综合管理党支部"
SECRETARY = "demo-dt-001"
COMMITTEE_IN_BRANCH = "demo-dt-004"  # 党委工作人员 and 管理员, a member of 生产第一党支部
COMMITTEE = "demo-dt-016"  # 党委工作人员 in 综合管理党支部
REVIEWER = "demo-dt-028"  # 申报审核员 (on the committee), in 市场营销党支部
MEMBER = "demo-dt-005"
OTHER = "demo-dt-006"
THIRD = "demo-dt-007"
OTHER_SECRETARY = "demo-dt-013"
STRANGER = "demo-dt-014"  # an ordinary member of 综合管理党支部
MAX_BYTES = 20_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A local Shanghai time in late 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


@dataclass(frozen=True)
class Demo:
    """Ids of the demo's people (by userid) and branches."""

    people: dict[str, int]
    branch: int
    other_branch: int
    committee: int

    def __getitem__(self, userid: str) -> int:
        return self.people[userid]


def seed(engine: Engine) -> Demo:
    """The demo roster, xinluo in force all year, and some November points in the branch."""
    with write_session(engine) as s:
        seed_demo(session=s)
        committee = orgs.child(s, None, DEMO_COMMITTEE)
        branch = orgs.child(s, committee, BRANCH)
        other = orgs.child(s, committee, OTHER_BRANCH)
        assert committee is not None and branch is not None and other is not None
        schemes.publish(session=s, org=committee, content=preset_text("xinluo"),
                        effective_from=date(2026, 1, 1), actor_label="test")
        people = {p.dingtalk_userid or "": p.id or 0 for p in s.exec(select(Person))}
        for userid, code, count in ((MEMBER, "online_study", 3),
                                    (MEMBER, "attendance_present", 2),
                                    (OTHER, "online_study", 2)):
            record_entry(session=s, member_id=people[userid], indicator_code=code, count=count,
                         occurred_on=date(2026, 11, 10), reason="测试数据", actor=Actor("test"))
        return Demo(people, branch.id or 0, other.id or 0, committee.id or 0)


def confirm_rest(engine: Engine, demo: Demo, *, skip: tuple[str, ...], when: datetime) -> None:
    """Everyone else in the branch who has not yet confirmed does, as prefilled."""
    with write_session(engine) as s:
        branch = s.get(Organization, demo.branch)
        assert branch is not None
        skipped = {demo[userid] for userid in skip}
        for person in branch_members(session=s, branch=branch):
            if person.id not in skipped and find_month(session=s, person_id=person.id or 0,
                                                       period=PERIOD) is None:
                confirm_self_evaluation(session=s, member=person, period=PERIOD,
                                        adjustments=None, note="", now=when, tz=TZ)


def make_client(settings: Settings, evidence_dir: Path, **changes: object) -> TestClient:
    """A client of the app on the test database, evidence stored under `evidence_dir`."""
    changed = settings.model_copy(update={"evidence_dir": str(evidence_dir),
                                          "evidence_max_bytes": MAX_BYTES, **changes})
    return TestClient(create_app(changed), follow_redirects=False)


@contextmanager
def as_of(when: datetime) -> Iterator[None]:
    """Run requests (and sign their sessions) at `when`."""
    with time_machine.travel(when, tick=False):
        yield


def login(client: TestClient, demo: Demo, userid: str) -> None:
    """Log in through the dev login as a demo person."""
    answer = client.post("/api/v1/auth/dev", json={"person_id": demo[userid]})
    assert answer.status_code == 200, answer.text
