"""The monthly evaluation from the chat, on the demo organisation: declarations and their
review, self-evaluation (card and command), scoring, publication, objections and answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from app.config import Settings
from app.db import write_session
from app.domain.scheme import preset_text
from app.models import Declaration, EntrySource, LedgerEntry, Objection
from app.services import orgs, schemes
from app.services.demo import DEMO_COMMITTEE
from app.services.people import find_person
from bot.commands import ROUTERS, fallback
from bot.dispatcher import Dispatcher
from bot.outbox_worker import Limits, OutboxWorker
from bot.types import Outcome, Reply
from tests.chat import conformance as suite
from tests.chat.conformance import MEMBER, OTHER_SECRETARY, SECRETARY, Said
from tests.chat.drivers import DispatcherDriver

TZ = ZoneInfo("Asia/Shanghai")
BASE = "https://dj.example.com"
REVIEWER = "demo-dt-028"  # 申报审核员, a committee role
COMMITTEE = "demo-dt-004"  # 党委工作人员, and a member of the first branch
PUBLISHER = "demo-dt-016"  # 党委工作人员 in another branch
ABSENT = "demo-dt-006"  # never self-evaluates
LATE = "demo-dt-007"  # self-evaluates after the deadline
FIRST_BRANCH = [f"demo-dt-{n:03d}" for n in range(1, 13)]


def local(month: int, day: int, hour: int = 10) -> datetime:
    """A Shanghai time in late 2026."""
    return datetime(2026, month, day, hour, tzinfo=TZ)


@dataclass
class Clock:
    """The dispatcher's clock, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


class Driver(DispatcherDriver):
    """The dispatcher driver, also keeping the last reply so that its buttons can be clicked."""

    last: Reply | None = None

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        super().__init__(engine, dispatcher)
        # A publication sends a dozen posts at once: no pacing, so each message's posts are
        # delivered before the next message.
        self.worker = OutboxWorker(engine=engine, senders=self.worker.senders,
                                   limits=Limits(robot_per_min=10**6, app_per_min=10**6))

    def _with_posts(self, outcome: Outcome | None) -> Said:
        self.last = outcome.reply if outcome else None
        return super()._with_posts(outcome)


@dataclass
class Chat:
    """The seeded demo world, its driver, clock and names."""

    driver: Driver
    clock: Clock
    ids: dict[str, int]
    group: str
    names: dict[str, str] = field(default_factory=dict)

    def say(self, userid: str, text: str, *, group: str | None = None) -> Said:
        return self.driver.say(userid, text, group=group)

    def text(self, userid: str, text: str) -> str:
        reply = self.say(userid, text).reply
        assert reply is not None, text
        return reply


def _article_needs_no_evidence(db: Engine) -> None:
    """A second version of the scheme in which 稿件被上级采用 is declared without evidence."""
    block = "source: declared\n    evidence_required: true\n    awarders: [committee_staff, branch"
    content = preset_text("xinluo")
    assert content.count(block) == 1
    with write_session(db) as s:
        committee = orgs.child(s, None, DEMO_COMMITTEE)
        assert committee is not None
        schemes.publish(session=s, org=committee, effective_from=date(2026, 1, 1),
                        content=content.replace(block, block.replace(
                            "evidence_required: true", "evidence_required: false")),
                        actor_label="test")


@pytest.fixture
def chat(db, db_url) -> Chat:
    """The demo organisation on 20 November 2026, with a dispatcher on a clock the test moves."""
    clock = Clock(local(11, 20))
    ids = suite.seed_world(db, clock.now)
    _article_needs_no_evidence(db)
    settings = Settings(_env_file=None, database_url=db_url, public_base_url=BASE)
    driver = Driver(db, Dispatcher(engine=db, settings=settings, routers=ROUTERS,
                                   fallback=fallback, clock=clock))
    with write_session(db) as s:
        names = {}
        for userid in {*FIRST_BRANCH, OTHER_SECRETARY, REVIEWER, PUBLISHER}:
            person = find_person(session=s, key=userid)
            assert person is not None
            names[userid] = person.name
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        assert branch is not None
    return Chat(driver, clock, ids, driver.bind(branch), names)


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, text
    return int(found.group(1))


def test_declarations_go_to_their_designated_reviewer(chat):
    listed = chat.text(MEMBER, "/申报")
    assert "2026年11月可申报的事项" in listed
    assert "- 参加志愿服务活动（3 分，须附佐证材料）" in listed
    assert "- 党建或业务信息稿件被上级采用（1 分）" in listed

    # Evidence required: a draft and the page to attach photos; nothing to review yet.
    draft = chat.text(MEMBER, "/申报 志愿服务 参加社区义务植树")
    draft_id = number(r"已创建申报 D(\d+)", draft)
    assert f"{BASE}/h5/declarations/{draft_id}" in draft and "佐证材料" in draft
    # No evidence needed: submitted at once.
    sent = number(r"已提交申报 S(\d+)", chat.text(MEMBER, "/申报 稿件 党建稿件被市局采用"))
    earlier = number(r"已提交申报 S(\d+)", chat.text(MEMBER, "/申报 稿件 上月 十月的稿件被采用"))
    with write_session(chat.driver.engine) as s:
        assert s.get(Declaration, draft_id).entry_id is None
        assert s.get(LedgerEntry, earlier).occurred_on == date(2026, 10, 31)

    # Unknown or ambiguous items, a missing description, a month to come: hints in Chinese.
    ambiguous = chat.text(MEMBER, "/申报 表彰 获奖")
    assert "对应多个事项" in ambiguous and "获得国家级表彰奖励" in ambiguous
    assert "参加志愿服务活动" not in ambiguous
    unknown = chat.text(MEMBER, "/申报 晨跑 每天五公里")
    assert "没有可申报的事项“晨跑”" in unknown and "参加志愿服务活动" in unknown
    assert "请写明申报说明" in chat.text(MEMBER, "/申报 志愿服务")
    assert "还没到" in chat.text(MEMBER, "/申报 志愿服务 2026-12 提前申报")
    assert "看不懂“2026-13”" in chat.text(MEMBER, "/申报 2026-13")

    # The designated reviewer (a committee role) sees every one; nobody reviews their own.
    own = number(r"已提交申报 S(\d+)", chat.text(SECRETARY, "/申报 稿件 支部工作信息被采用"))
    todo = chat.text(REVIEWER, "/待办")
    for entry in (chat.ids["declared"], sent, own):
        assert f"申报 S{entry}：" in todo
    assert f"{BASE}/h5/declarations/reviews" in todo and f"D{draft_id}" not in todo
    secretary_todo = chat.text(SECRETARY, "/待办")
    assert f"S{sent}：" in secretary_todo and f"S{own}：" not in secretary_todo
    assert "不能审核自己的申报" in chat.text(SECRETARY, f"/批准 S{own}")
    assert "您不是该申报的指定审核人" in chat.text(OTHER_SECRETARY, f"/批准 S{sent}")
    assert "仅限" in chat.text(MEMBER, f"/批准 S{sent}")
    assert "理由" in chat.text(REVIEWER, f"/驳回 S{own}")

    rejected = chat.say(REVIEWER, f"/驳回 S{own} 稿件未注明采用单位")
    assert "已驳回申报" in (rejected.reply or "")
    assert any("被驳回" in t for t in rejected.private[SECRETARY])
    approved = chat.say(REVIEWER, f"/批准 S{sent}")
    assert "已批准申报" in (approved.reply or "")
    assert any(f"S{sent}" in t and "已通过" in t for t in approved.private[MEMBER])
    assert "已处理" in chat.text(REVIEWER, f"/批准 S{sent}")
    for entry in (chat.ids["declared"], earlier):
        assert "已批准申报" in chat.text(REVIEWER, f"/批准 S{entry}")
    assert chat.text(REVIEWER, "/待办") == "目前没有待您处理的事项。"


def test_a_month_from_self_evaluation_to_an_answered_objection(chat):
    names, driver = chat.names, chat.driver
    assert "已批准申报" in chat.text(REVIEWER, f"/批准 S{chat.ids['declared']}")

    # 20 November: the month under evaluation is still October; November opens on the 25th.
    assert "2026年10月自评" in chat.text(MEMBER, "/自评")
    early = chat.text(MEMBER, "/自评 本月")
    assert "2026年11月自评" in early and "将于11月25日开放" in early
    assert driver.last is not None and driver.last.buttons == ()
    assert "11月的自评将于11月25日开放" in chat.text(MEMBER, "/自评 确认 本月")

    # --- 26 November: self-evaluation, by the card and by the command. ---
    chat.clock.now = local(11, 26)
    form = chat.text(MEMBER, "/自评")
    assert "2026年11月自评" in form
    assert "请在12月5日前确认，按时确认记“按时完成月度积分自评”" in form
    # online study 4 + study notes 2 + on time 2 (recorded on confirming) …
    assert "- 政治合格：台账 6（最高 16）" in form
    assert f"{BASE}/h5/evaluation?period=2026-11" in form
    card = driver.last
    assert card is not None and card.card_id
    (button,) = card.buttons
    assert (button.label, button.action, button.params, button.command) == (
        "确认", "evaluation.confirm", {"period": "2026-11", "member": button.params["member"]},
        "/自评 确认 2026-11")
    assert "其他同志的自评卡片" in driver.click(ABSENT, card.card_id, button.action,
                                             button.params)
    confirmed = driver.click(MEMBER, card.card_id, button.action, button.params)
    assert confirmed.startswith("已确认2026年11月自评：合计 ")
    assert driver.click(MEMBER, card.card_id, button.action, button.params) == confirmed
    assert "本月自评已确认，不能重复确认" in chat.text(MEMBER, "/自评 确认")
    after = chat.text(MEMBER, "/自评")
    assert "状态：已自评" in after and "自评 8" in after
    assert driver.last is not None and driver.last.buttons == ()
    assert "看不懂“随便”" in chat.text(MEMBER, "/自评 随便")
    for userid in FIRST_BRANCH:
        if userid not in (MEMBER, ABSENT, LATE):
            assert "已确认2026年11月自评" in chat.text(userid, "/自评 确认"), userid

    # --- Scoring: a reason when far from the self score; nobody scores themselves. ---
    member, absent = names[MEMBER], names[ABSENT]
    assert "仅限" in chat.text(MEMBER, f"/评分 {absent} 政治合格=1")
    assert "尚未自评，自评截止日为12月5日" in chat.text(SECRETARY, f"/评分 {absent} 政治合格=1")
    assert "只能给本支部党员评分" in chat.text(OTHER_SECRETARY, f"/评分 {member} 政治合格=9")
    assert "不能给自己评分" in chat.text(SECRETARY, f"/评分 {names[SECRETARY]} 政治合格=9")
    assert "相差 5 分，超过 2 分，请填写理由" in chat.text(SECRETARY, f"/评分 {member} 政治合格=13")
    assert "看不懂维度“思想”" in chat.text(SECRETARY, f"/评分 {member} 思想=3")
    assert "没看到分数" in chat.text(SECRETARY, f"/评分 {member} 表现很好")
    assert "找不到党员“无名氏”" in chat.text(SECRETARY, "/评分 无名氏 政治合格=1")
    scored = chat.text(SECRETARY, f"/评分 {member} 政治=13 学习心得质量高")
    assert f"已评定 {member} 2026年11月综合评分" in scored and "理由：学习心得质量高" in scored
    view = chat.text(SECRETARY, f"/评分 {member}")
    assert "状态：已评分" in view and "自评 8，评定 13" in view
    assert "月度评分（生产第一党支部 2026年11月）：已自评待评分 8 人，未自评 2 人" in chat.text(
        SECRETARY, "/待办")
    listed = chat.text(SECRETARY, "/评分")
    assert f"- {absent}：未自评" in listed and f"- {names['demo-dt-002']}：自评 " in listed
    # The committee scores the branch secretaries.
    committee_todo = chat.text(COMMITTEE, "/待办")
    assert f"支部书记月度评分（生产第一党支部 2026年11月）：{names[SECRETARY]}（已自评）" in (
        committee_todo)
    assert f"{names[OTHER_SECRETARY]}（未自评）" in committee_todo

    # --- 6 December: the deadline has passed; late, accepted, scored one by one. ---
    chat.clock.now = local(12, 6)
    assert "现在确认将记为逾期" in chat.text(LATE, "/自评")
    assert "已确认2026年11月自评（逾期）" in chat.text(LATE, "/自评 确认")
    accepted = chat.text(SECRETARY, "/采纳自评")
    assert "已采纳 9 人的自评分" in accepted
    assert f"未采纳：{names[SECRETARY]}（不能给自己评分）" in accepted
    assert f"尚未自评 1 人（{absent}）" in accepted
    assert "本方案按维度评分" in chat.text(SECRETARY, f"/评分 {absent} 5")
    assert "未填理由" in chat.text(SECRETARY, f"/评分 {absent} 政治合格=1")
    secretary = chat.text(COMMITTEE, f"/评分 {names[SECRETARY]} 品德合格=5 带领支部开展志愿服务")
    assert "理由：带领支部开展志愿服务" in secretary
    progress = chat.text(SECRETARY, "/评议进度")
    assert "生产第一党支部（待公示）：自评 11/12（逾期 2），已评分 12/12" in progress
    assert "仅限" in chat.text(MEMBER, "/评议进度")
    assert "看不懂“2026-13”" in chat.text(SECRETARY, "/采纳自评 2026-13")

    # --- 8 December: the committee publishes; the group gets the post, members their own. ---
    chat.clock.now = local(12, 8)
    assert "仅限" in chat.text(MEMBER, "/公示")
    assert "只有党委可以审定公示月度评价" in chat.text(SECRETARY, "/公示")
    assert "需由其他党委成员审定公示" in chat.text(COMMITTEE, "/公示 生产第一党支部")
    assert "请写明支部名称" in chat.text(PUBLISHER, "/公示")
    assert "找不到支部“第九党支部”" in chat.text(PUBLISHER, "/公示 第九党支部")
    published = chat.say(PUBLISHER, "/公示 第一党支部")
    assert "已公示生产第一党支部2026年11月月度评价（12 人），异议期至 12月11日 10:00" in (
        published.reply or "")
    posts = [n.reply.text for n in driver.delivered if n.chat_id == chat.group]
    assert len(posts) == 1 and "2026年11月月度评价公示" in posts[0]
    assert "/异议 理由" in posts[0] and "/h5/evaluation/branches/" in posts[0]
    assert any("学习心得质量高" in t for t in published.private[MEMBER])

    # --- 9 December: an objection, dismissed; another, upheld with a correction. ---
    chat.clock.now = local(12, 9)
    assert "请写明异议理由" in chat.text(MEMBER, "/异议")
    raised = chat.say(MEMBER, "/异议 学习心得加分漏记了")
    first = number(r"已提交异议 Y(\d+)，支部书记将尽快答复", raised.reply or "")
    assert any(f"/答复异议 Y{first}" in t for t in raised.private[SECRETARY])
    assert "正在处理中" in chat.text(MEMBER, "/异议 再提一次")
    assert f"异议 Y{first}：{member}（生产第一党支部）" in chat.text(SECRETARY, "/待办")
    assert "仅限" in chat.text(MEMBER, f"/答复异议 Y{first} 维持 无误")
    assert "只能答复本支部党员的异议" in chat.text(OTHER_SECRETARY, f"/答复异议 Y{first} 维持 无误")
    assert "请按格式发送" in chat.text(SECRETARY, f"/答复异议 Y{first} 也许")
    assert "更正时请写明指标和分值" in chat.text(SECRETARY, f"/答复异议 Y{first} 更正 漏记")
    dismissed = chat.say(SECRETARY, f"/答复异议 Y{first} 维持 经核实已计入")
    assert "维持原评分" in (dismissed.reply or "")
    assert any("不成立" in t for t in dismissed.private[MEMBER])
    second = number(r"已提交异议 Y(\d+)", chat.text(MEMBER, "/异议 第二篇心得漏记"))
    upheld = chat.say(SECRETARY, f"/答复异议 Y{second} 更正 学习心得 2 第二篇心得漏记，予以更正")
    assert "已更正 2 分" in (upheld.reply or "")
    assert any("成立，已更正积分" in t for t in upheld.private[MEMBER])
    with write_session(driver.engine) as s:
        answered = s.get(Objection, second)
        correction = s.get(LedgerEntry, answered.correction_entry_id)
        assert (correction.points, correction.source) == (2, EntrySource.ADJUSTMENT)
        assert s.exec(select(Objection).where(Objection.status == "open")).all() == []
    overview = chat.text(PUBLISHER, "/评议进度")
    assert "生产第一党支部（公示中）" in overview and "异议期至 12月11日 10:00" in overview
    assert "综合管理党支部（自评中）" in overview
