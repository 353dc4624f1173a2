"""The demo organisation that `make run` starts with."""

from __future__ import annotations

from sqlmodel import Session, select

from app.models import ChatGroup, Platform
from app.services import orgs
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
