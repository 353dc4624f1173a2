"""The demo organisation that `make run` starts with."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.domain.scheme import preset_text
from app.models import ChatGroup, Organization, Person, Platform
from app.services import orgs, schemes
from app.services.activities import create_activity
from app.services.ledger import Actor, record_entry
from app.services.roster import ImportReport, import_roster

DEMO_COMMITTEE = "示范集团党委"
DEMO_BRANCHES = (
    ("生产第一党支部", "生产类"),
    ("综合管理党支部", "综合管理类"),
    ("市场营销党支部", "市场经营类"),
)
MEMBERS_PER_BRANCH = 12
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
          "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "志强", "晓东")
HEADER = ["姓名", "手机号", "钉钉userid", "企业微信userid", "所在支部", "党小组", "职务/角色",
          "人员类别", "入党日期", "支部类别"]


def demo_table() -> tuple[list[object], list[tuple[int, list[object]]]]:
    """The demo roster as a table in the import format; the same every time."""
    rows: list[tuple[int, list[object]]] = []
    n = 0
    for b, (branch, category) in enumerate(DEMO_BRANCHES):
        for i in range(MEMBERS_PER_BRANCH):
            n += 1
            name = _SURNAMES[(n * 7) % len(_SURNAMES)] + _GIVEN[(n * 5 + b) % len(_GIVEN)]
            role = {0: "支部书记", 1: "组织委员", 2: "纪检委员"}.get(i, "党员")
            if b == 0 and i == 3:
                role = "党员、党委工作人员、管理员"
            elif b == 1 and i == 3:
                # A second committee member: nobody publishes a month holding their own score.
                role = "党员、党委工作人员"
            elif b == 2 and i == 3:
                role = "党员、申报审核员"
            kind = "预备党员" if i == MEMBERS_PER_BRANCH - 1 else "正式党员"
            rows.append((n + 1, [
                name, f"1380000{n:04d}", f"demo-dt-{n:03d}", f"demo-wx-{n:03d}",
                f"{DEMO_COMMITTEE}/{branch}", f"第{i // 6 + 1}党小组", role, kind,
                f"{1990 + (n * 3) % 33}-07-01", category,
            ]))
    return list(HEADER), rows


def seed_demo(*, session: Session) -> ImportReport:
    """Create or refresh the demo committee, its members and simulator chat groups."""
    report = import_roster(session=session, table=demo_table(), actor_label="demo-seed")
    committee = orgs.child(session, None, DEMO_COMMITTEE)
    assert committee is not None
    for branch_name, _ in DEMO_BRANCHES:
        branch = orgs.child(session, committee, branch_name)
        assert branch is not None
        chat_id = f"sim-{branch.id}"
        exists = session.exec(
            select(ChatGroup).where(
                ChatGroup.platform == Platform.SIMULATOR, ChatGroup.chat_id == chat_id
            )
        ).first()
        if exists is None:
            session.add(
                ChatGroup(platform=Platform.SIMULATOR, chat_id=chat_id,
                          name=f"{branch_name}工作群", organization_id=branch.id)
            )
    session.flush()
    return report


def seed_demo_activity(*, session: Session, now: datetime, tz: ZoneInfo) -> bool:
    """Give the demo something to show: the scheme, some points, a 主题党日 and a meeting now.

    Only the first time: returns False when the demo committee already has a scheme.
    """
    committee = orgs.child(session, None, DEMO_COMMITTEE)
    if committee is None or schemes.versions(session=session, org=committee):
        return False
    today = now.astimezone(tz).date()
    schemes.publish(session=session, org=committee, content=preset_text("xinluo"),
                    effective_from=date(today.year, 1, 1), actor_label="demo-seed")
    seeder = Actor("demo-seed")
    people = session.exec(
        select(Person)
        .join(Organization, col(Organization.id) == Person.organization_id)
        .where(col(Organization.path).startswith(committee.path))
        .order_by(col(Person.id))
    ).all()
    for n, person in enumerate(people):
        for code, count in (("online_study", n % 5 + 1), ("attendance_present", 1 + n % 2),
                            ("dues_paid_on_time", 1)):
            record_entry(session=session, member_id=person.id, indicator_code=code, count=count,
                         occurred_on=today, reason="演示数据", actor=seeder)
    first = people[4]
    record_entry(session=session, member_id=first.id, indicator_code="study_notes",
                 occurred_on=today, reason="提交学习心得（演示）",
                 actor=Actor(first.name, first.id), evidence=["demo/notes.jpg"])
    start = datetime.combine(today + timedelta(days=3), time(14, 30), tzinfo=tz)
    # A meeting under way, so that the room screen and scanning can be tried straight away.
    started = (now - timedelta(minutes=5)).replace(second=0, microsecond=0)
    for branch_name, _ in DEMO_BRANCHES:
        branch = orgs.child(session, committee, branch_name)
        assert branch is not None
        create_activity(session=session, branch=branch, kind="主题党日",
                        title="学习贯彻党的二十大精神", starts_at=start.astimezone(UTC),
                        place="三楼党员活动室")
        create_activity(session=session, branch=branch, kind="集中学习",
                        title="专题学习（演示：正在签到）", starts_at=started.astimezone(UTC),
                        ends_at=(started + timedelta(hours=2)).astimezone(UTC),
                        place="二楼会议室")
    return True
