"""Platform-neutral chat behaviour: every channel (simulator, DingTalk HTTP and Stream, WeCom)
runs these same checks through its own driver, so a command behaves alike everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine

from app.db import write_session
from app.domain.scheme import preset_text as preset
from app.models import LeaveRequest, Organization
from app.services import orgs, schemes
from app.services.activities import create_activity
from app.services.demo import seed_demo
from app.services.ledger import Actor, record_entry
from app.services.people import find_person

SECRETARY = "demo-dt-001"  # 生产第一党支部's secretary
MEMBER = "demo-dt-005"  # an ordinary member there
OTHER_SECRETARY = "demo-dt-013"  # secretary of 综合管理党支部
STRANGER = "not-on-the-roster"
BRANCH = "生产第一党支部"


@dataclass
class Said:
    """What the bot answered: the reply in the chat, private messages, and cards sent."""

    reply: str | None
    private: dict[str, list[str]] = field(default_factory=dict)
    cards: list[tuple[str, str, list[tuple[str, str, dict[str, str]]]]] = field(
        default_factory=list)  # (recipient, card id, [(label, action, params)])


class ChatDriver(Protocol):
    """How a test talks to one channel."""

    def say(self, userid: str, text: str, *, group: str | None = None,
            message_id: str | None = None) -> Said:
        """Send `text` as `userid` in `group` (a chat id) or 1:1; return what the bot said."""

    def click(self, userid: str, card_id: str, action: str, params: dict[str, str]) -> str:
        """Click a card button; return the card's new text."""

    def bind(self, branch: Organization) -> str:
        """A group chat of this channel bound to `branch`; returns its chat id."""

    def unbound_group(self) -> str:
        """A group chat of this channel bound to nothing."""


def seed_world(engine: Engine, now: datetime) -> dict[str, int]:
    """The demo organisation with a published scheme, some points and one upcoming meeting."""
    with write_session(engine) as s:
        seed_demo(session=s)
        committee = orgs.child(s, None, "示范集团党委")
        assert committee is not None
        schemes.publish(session=s, org=committee, content=preset("xinluo"),
                        effective_from=datetime(now.year, 1, 1).date(), actor_label="test")
        branch = orgs.find_by_path_or_name(s, BRANCH)
        member = find_person(session=s, key=MEMBER)
        for code, count in (("online_study", 4), ("attendance_present", 1)):
            record_entry(session=s, member_id=member.id, indicator_code=code, count=count,
                         occurred_on=now.date(), reason="测试数据", actor=Actor("test"))
        declared = record_entry(session=s, member_id=member.id, indicator_code="study_notes",
                                occurred_on=now.date(), reason="提交学习心得",
                                actor=Actor(member.name, member.id), evidence=["notes.jpg"])
        meeting = create_activity(session=s, branch=branch, kind="主题党日", title="学习二十大精神",
                                  starts_at=now + timedelta(days=3), place="三楼会议室")
        return {"branch": branch.id, "activity": meeting.id, "declared": declared.id}


def check_my_points(chat: ChatDriver, group: str) -> None:
    """/我的积分 shows the member's total, dimensions and rank, in every spelling."""
    for text in ("/我的积分", "我的积分", "@党员积分助手 /我的积分", "／我的積分。"):
        said = chat.say(MEMBER, text, group=group)
        assert said.reply is not None and "积分" in said.reply, text
        assert "政治合格" in said.reply and "合计" in said.reply
        assert "5" in said.reply  # online_study 4 + attendance_present 1
    # xinluo ranks top 10 publicly, so one's own rank in a group goes privately.
    said = chat.say(MEMBER, "/我的积分", group=group)
    assert "排名已私信" in (said.reply or "")
    assert any("第 1 名" in text for text in said.private.get(MEMBER, []))


def check_period_words(chat: ChatDriver) -> None:
    """Periods: 上月, a month, 本年, and a clear hint for nonsense."""
    assert "月积分" in (chat.say(MEMBER, "/我的积分 上月").reply or "")
    assert "年积分" in (chat.say(MEMBER, "/我的积分 本年").reply or "")
    bad = chat.say(MEMBER, "/我的积分 2026-13").reply or ""
    assert "看不懂" in bad and "本月" in bad


def check_board(chat: ChatDriver, group: str) -> None:
    """/排行 shows the top of the branch; the asker's own row is there or sent privately."""
    said = chat.say(SECRETARY, "/排行", group=group)
    assert said.reply is not None and BRANCH in said.reply and "前 10 名" in said.reply
    # Bullets, not a numbered list: markdown would renumber tied ranks.
    assert "- 第 1 名 " in said.reply and "\n1. " not in said.reply


def check_leave_flow(chat: ChatDriver, activity_id: int, group: str) -> None:
    """A member asks for leave; the secretary gets a card, lists it, approves it once."""
    listed = chat.say(MEMBER, "/活动", group=group).reply or ""
    assert f"序号 {activity_id}" in listed and "学习二十大精神" in listed
    asked = chat.say(MEMBER, f"/请假 {activity_id} 事假 出差在外", group=group)
    assert "已提交请假申请 Q" in (asked.reply or "")
    assert [recipient for recipient, *_ in asked.cards] == [SECRETARY]
    _, _, buttons = asked.cards[0]
    assert [label for label, *_ in buttons] == ["批准", "驳回"]
    leave_id = buttons[0][2]["leave_id"]
    again = chat.say(MEMBER, f"/请假 {activity_id} 病假 还是出差")
    assert "已为该活动请过假" in (again.reply or "")
    todo = chat.say(SECRETARY, "/待办").reply or ""
    assert f"Q{leave_id}" in todo and "出差在外" in todo
    refused = chat.say(MEMBER, f"/批准 Q{leave_id}").reply or ""
    assert "仅限" in refused
    stranger = chat.say(OTHER_SECRETARY, f"/批准 Q{leave_id}").reply or ""
    assert "只有该支部的书记" in stranger
    no_reason = chat.say(SECRETARY, f"/驳回 Q{leave_id}").reply or ""
    assert "理由" in no_reason
    approved = chat.say(SECRETARY, f"/批准 Q{leave_id}")
    assert "已批准请假申请" in (approved.reply or "")
    assert any("已批准" in text for text in approved.private.get(MEMBER, []))
    twice = chat.say(SECRETARY, f"/批准 {leave_id}")
    assert "无需重复" in (twice.reply or "") and not twice.private
    listed = chat.say(MEMBER, "/活动").reply or ""
    assert "已批准" in listed


def check_leave_card(chat: ChatDriver, engine: Engine, activity_id: int) -> None:
    """The secretary decides from the card; others cannot; a second click changes nothing."""
    asked = chat.say(MEMBER, f"/请假 {activity_id} 公假 外出培训")
    _, card_id, buttons = asked.cards[0]
    (_, approve, params), (_, reject, _) = buttons
    refused = chat.click(OTHER_SECRETARY, card_id, approve, params)
    assert "只有该支部的书记" in refused
    updated = chat.click(SECRETARY, card_id, reject, params)
    assert "已驳回" in updated
    assert "已驳回" in chat.click(SECRETARY, card_id, reject, params)
    with write_session(engine) as s:
        leave = s.get(LeaveRequest, int(params["leave_id"]))
        assert leave is not None and leave.status == "rejected"
        assert leave.decision_reason


def check_help_is_role_aware(chat: ChatDriver) -> None:
    """/帮助 lists what the person may use."""
    member = chat.say(MEMBER, "/帮助").reply or ""
    secretary = chat.say(SECRETARY, "帮助").reply or ""
    assert "/我的积分" in member and "/批准" not in member
    assert "/批准" in secretary and "/待办" in secretary


def check_unknown_and_strangers(chat: ChatDriver, group: str) -> None:
    """Unknown text gets a hint; an unregistered sender gets how to register and no data."""
    hint = chat.say(MEMBER, "今天天气不错", group=group).reply or ""
    assert "没看懂" in hint and "/帮助" in hint
    stranger = chat.say(STRANGER, "/我的积分", group=group).reply or ""
    assert "名册" in stranger and "合计" not in stranger


def check_group_binding(chat: ChatDriver, engine: Engine) -> None:
    """An unbound group hints at binding; a member cannot bind it, the secretary can."""
    group = chat.unbound_group()
    first = chat.say(MEMBER, "/我的积分", group=group).reply or ""
    assert "绑定支部" in first
    assert "仅限" in (chat.say(MEMBER, f"/绑定支部 {BRANCH}", group=group).reply or "")
    bound = chat.say(SECRETARY, f"/绑定支部 {BRANCH}", group=group).reply or ""
    assert "已绑定" in bound
    after = chat.say(MEMBER, "/我的积分", group=group).reply or ""
    assert "绑定支部" not in after


def check_duplicates_answered_once(chat: ChatDriver, group: str) -> None:
    """A redelivered message (same platform id) is answered once."""
    first = chat.say(MEMBER, "/我的积分", group=group, message_id="dup-1")
    second = chat.say(MEMBER, "/我的积分", group=group, message_id="dup-1")
    assert first.reply is not None and second.reply is None


def check_declaration_review(chat: ChatDriver, entry_id: int) -> None:
    """A pending declaration shows in the secretary's /待办 and is approved with /批准 S…."""
    todo = chat.say(SECRETARY, "/待办").reply or ""
    assert f"S{entry_id}" in todo and "提交学习心得体会" in todo
    before = chat.say(MEMBER, "/我的积分").reply or ""
    assert "待审核：1 条" in before
    assert "仅限" in (chat.say(MEMBER, f"/批准 S{entry_id}").reply or "")
    assert "已批准申报" in (chat.say(SECRETARY, f"/批准 S{entry_id}").reply or "")
    after = chat.say(MEMBER, "/我的积分").reply or ""
    assert "待审核" not in after and "合计 **9** 分" in after
    again = chat.say(SECRETARY, f"/批准 S{entry_id}").reply or ""
    assert "已处理" in again
