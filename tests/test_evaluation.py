"""The monthly evaluation on a real database: a full month walked through, spot checks, and
evidence uploads. Scores are checked against numbers worked out by hand (scheme: xinluo)."""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, col, select

from app.db import write_session
from app.domain.evaluation import BranchPhase, MonthState, draw_sample
from app.domain.vocab import MemberType, Role
from app.models import (
    AuditLog,
    ChatGroup,
    Declaration,
    EntryReview,
    EntrySource,
    EvaluationTransition,
    EvidenceFile,
    LedgerEntry,
    MemberMonth,
    MonthResult,
    Organization,
    OutboxMessage,
    Person,
    Platform,
    RoleAssignment,
    SpotCheck,
)
from app.services import (
    declarations,
    evaluation,
    evaluation_publish,
    evaluation_status,
    evidence,
    spot_checks,
)
from app.services.evaluation_base import history
from app.services.ledger import Actor, record_entry, review_entry
from app.services.reports import live_scores
from tests.factories import build_org

D = Decimal
TZ = ZoneInfo("Asia/Shanghai")
NOV = "2026-11"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"\x00" * 64
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 32


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A local Shanghai time in late 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


@dataclass
class World:
    """Ids of the people and organisations of the test committee."""

    committee: int
    branch: int
    other_branch: int
    people: dict[str, int]

    def __call__(self, session: Session, key: str) -> Person:
        person = session.get(Person, self.people[key])
        assert person is not None
        return person


def _person(s: Session, name: str, org_id: int, *roles: tuple[Role, int]) -> int:
    person = Person(name=name, member_type=MemberType.full, organization_id=org_id,
                    dingtalk_userid=f"dt-{name}")
    s.add(person)
    s.flush()
    s.add_all(RoleAssignment(person_id=person.id, role=role, organization_id=org)
              for role, org in roles)
    return person.id or 0


@pytest.fixture
def world(db) -> World:
    """Branch 1: secretary S, members A, B, C; branch 2: secretary S2, X (its designated
    reviewer), Y, Z; at the committee: 党委书记 K, staff P and the designated reviewer R."""
    with write_session(db) as s:
        built = build_org(s, branches=2, members=4)
        committee = built.committee.id or 0
        first, second = (b.id or 0 for b in built.branches)
        people = {key: p.id or 0 for key, p in zip(
            ["S", "A", "B", "C", "S2", "X", "Y", "Z"], built.everyone(), strict=True)}
        people["K"] = _person(s, "书记K", committee, (Role.branch_secretary, committee))
        people["P"] = _person(s, "组织部P", committee, (Role.committee_staff, committee))
        people["R"] = _person(s, "审核员R", committee, (Role.declaration_reviewer, committee))
        s.add(RoleAssignment(person_id=people["X"], role=Role.declaration_reviewer,
                             organization_id=second))
        s.add(ChatGroup(platform=Platform.DINGTALK, chat_id="g1", name="第一支部群",
                        organization_id=first))
        return World(committee, first, second, people)


@contextmanager
def tx(db) -> Iterator[Session]:
    with write_session(db) as s:
        yield s


def refused(db, message: str, call: Callable[[Session], Any]) -> None:
    """`call` is refused with `message` and leaves nothing behind."""
    with pytest.raises(ValueError, match=message), tx(db) as s:
        call(s)


def add_entries(db, world: World, entries: dict[str, list[tuple[str, int]]]) -> None:
    with tx(db) as s:
        for key, lines in entries.items():
            for code, count in lines:
                record_entry(session=s, member_id=world.people[key], indicator_code=code,
                             count=count, occurred_on=date(2026, 11, 10), reason="测试数据",
                             actor=Actor("test"))


def declare_with(db, world: World, storage: Path, key: str, code: str, what: str,
                 data: bytes, filename: str) -> int:
    """Declare, attach one file and submit; the pending entry's id."""
    with tx(db) as s:
        draft = declarations.declare(session=s, member=world(s, key), indicator_code=code,
                                     description=what, occurred_on=date(2026, 11, 15),
                                     now=at(20, 10))
        evidence.attach_evidence(session=s, member=world(s, key), declaration_id=draft.id,
                                 filename=filename, content_type="", data=data,
                                 storage_dir=storage, now=at(20, 10))
        entry = declarations.submit_declaration(session=s, member=world(s, key),
                                                declaration_id=draft.id, now=at(20, 11))
        return entry.id or 0


def month_in(s: Session, world: World, key: str) -> MemberMonth:
    return s.exec(select(MemberMonth).where(MemberMonth.person_id == world.people[key],
                                            MemberMonth.period == NOV)).one()


def month_of(db, world: World, key: str) -> MemberMonth:
    with tx(db) as s:
        return month_in(s, world, key)


def status_of(db, world: World, branch: int) -> evaluation_status.BranchProgress:
    with tx(db) as s:
        committee = s.get(Organization, world.committee)
        rows = evaluation_status.evaluation_status(session=s, org=committee, period=NOV)
    return next(r for r in rows if r.branch_id == branch)


def test_a_full_month_from_entries_to_close(db, world, tmp_path):
    branch = world.branch
    add_entries(db, world, {
        "A": [("online_study", 3), ("attendance_present", 2)],
        "B": [("online_study", 2), ("attendance_present", 3)],
        "C": [("online_study", 1), ("attendance_present", 1)],
        "S": [("online_study", 4), ("attendance_present", 4)],
    })

    # --- Declarations: A's is approved, B's rejected; nobody reviews their own. ---
    with tx(db) as s:
        draft = declarations.declare(session=s, member=world(s, "A"),
                                     indicator_code="volunteering", description="社区志愿服务",
                                     occurred_on=date(2026, 11, 15), now=at(20, 9))
        assert draft.entry_id is None  # evidence is required first
    refused(db, "需要上传佐证材料后再提交", lambda s: declarations.submit_declaration(
        session=s, member=world(s, "A"), declaration_id=draft.id, now=at(20, 9)))
    refused(db, "不是申报类指标", lambda s: declarations.declare(
        session=s, member=world(s, "A"), indicator_code="online_study", description="学习",
        occurred_on=date(2026, 11, 15), now=at(20, 9)))
    good = declare_with(db, world, tmp_path, "A", "volunteering", "社区志愿服务", PNG, "a.png")
    bad = declare_with(db, world, tmp_path, "B", "study_notes", "学习心得", PDF, "心得.pdf")
    with tx(db) as s:
        queue = declarations.declarations_to_review(session=s, reviewer=world(s, "R"))
        assert [entry.id for entry, _ in queue] == [good, bad]
        assert declarations.declarations_to_review(session=s, reviewer=world(s, "A")) == []
    refused(db, "不能审核自己的申报", lambda s: declarations.review_declaration(
        session=s, reviewer=world(s, "A"), entry_id=good, approve=True, reason=""))
    for outsider in ("X", "C"):  # another branch's reviewer; a member without the role
        refused(db, "您不是该申报的指定审核人", lambda s, who=outsider:
                declarations.review_declaration(session=s, reviewer=world(s, who),
                                                entry_id=good, approve=True, reason=""))
    refused(db, "驳回时必须填写理由", lambda s: declarations.review_declaration(
        session=s, reviewer=world(s, "R"), entry_id=bad, approve=False, reason=""))
    with tx(db) as s:
        declarations.review_declaration(session=s, reviewer=world(s, "R"), entry_id=good,
                                        approve=True, reason="")
        declarations.review_declaration(session=s, reviewer=world(s, "R"), entry_id=bad,
                                        approve=False, reason="心得与本月学习主题无关")
        file_id = s.exec(select(EvidenceFile.id)).first()
        for viewer in ("A", "S", "R"):
            evidence.evidence_for_viewing(session=s, viewer=world(s, viewer), file_id=file_id,
                                          storage_dir=tmp_path)
    refused(db, "无权查看", lambda s: evidence.evidence_for_viewing(
        session=s, viewer=world(s, "C"), file_id=file_id, storage_dir=tmp_path))

    # --- Self-evaluations (window 25 Nov – 5 Dec): A and S on time, B late, C never. ---
    refused(db, "11月的自评将于11月25日开放", lambda s: evaluation.confirm_self_evaluation(
        session=s, member=world(s, "A"), period=NOV, adjustments=None, note="",
        now=at(24, 12), tz=TZ))
    with tx(db) as s:
        form = evaluation.self_evaluation_form(session=s, member=world(s, "A"), period=NOV,
                                               now=at(26, 9), tz=TZ)
        assert [(d.code, d.ledger, d.high) for d in form.dimensions] == [
            ("political", 3, 13), ("discipline", 6, 14), ("morality", 3, 18), ("role", 0, 10)]
        assert form.state is MonthState.open and not form.late and form.pending == []
        # On time earns 按时完成月度自评 (+2 political): prefill 5, +8 → 13. Total 46.
        evaluation.confirm_self_evaluation(
            session=s, member=world(s, "A"), period=NOV, now=at(26, 9), tz=TZ,
            adjustments={"political": D(8), "discipline": D(6), "morality": D(10),
                         "role": D(8)}, note="按时参加各项活动")
        evaluation.confirm_self_evaluation(session=s, member=world(s, "S"), period=NOV,
                                           adjustments=None, note="", now=at(26, 9), tz=TZ)
    refused(db, "本月自评已确认，不能重复确认", lambda s: evaluation.confirm_self_evaluation(
        session=s, member=world(s, "A"), period=NOV, adjustments=None, note="",
        now=at(27, 9), tz=TZ))
    with tx(db) as s:
        # Late: no on-time points; asking +20 political is kept to what can be given (2+10).
        evaluation.confirm_self_evaluation(session=s, member=world(s, "B"), period=NOV,
                                           adjustments={"political": D(20)}, note="出差补填",
                                           now=at(7, 9, month=12), tz=TZ)
    a, b, sec = (month_of(db, world, k) for k in ("A", "B", "S"))
    assert (a.self_total, a.self_late, a.self_scores) == (
        46, False, {"political": "13.00", "discipline": "12.00", "morality": "13.00",
                    "role": "8.00"})
    assert (b.self_total, b.self_late, b.self_scores["political"]) == (21, True, "12.00")
    assert sec.self_total == 18  # online 4 + on time 2, attendance 12
    with tx(db) as s:
        assert [p.name for p in evaluation_status.members_not_self_evaluated(
            session=s, branch=s.get(Organization, branch), period=NOV)] == [
            world(s, "C").name]
    progress = status_of(db, world, branch)
    assert (progress.members, progress.self_evaluated, progress.late, progress.scored) == (
        4, 3, 1, 0)
    assert progress.phase is BranchPhase.self_evaluation

    # --- Scoring: the secretary scores the members, the committee secretary scores S. ---
    score = evaluation.score_member
    refused(db, "不能给自己评分", lambda s: score(
        session=s, secretary=world(s, "S"), member_id=world.people["S"], period=NOV,
        assessed={}, reason="", now=at(7, 10, month=12), tz=TZ))
    refused(db, "只能给本支部党员评分", lambda s: score(
        session=s, secretary=world(s, "S"), member_id=world.people["X"], period=NOV,
        assessed={}, reason="", now=at(7, 10, month=12), tz=TZ))
    refused(db, "党员的月度评分由本支部书记评定", lambda s: score(
        session=s, secretary=world(s, "P"), member_id=world.people["A"], period=NOV,
        assessed={}, reason="", now=at(7, 10, month=12), tz=TZ))
    refused(db, "本方案按维度评分", lambda s: score(
        session=s, secretary=world(s, "S"), member_id=world.people["B"], period=NOV,
        assessed=D(15), reason="", now=at(7, 10, month=12), tz=TZ))
    refused(db, "相差 6 分，超过 2 分，请填写理由", lambda s: score(
        session=s, secretary=world(s, "S"), member_id=world.people["B"], period=NOV,
        assessed={"political": D(6)}, reason="", now=at(7, 10, month=12), tz=TZ))
    with tx(db) as s:
        score(session=s, secretary=world(s, "S"), member_id=world.people["B"], period=NOV,
              assessed={"political": D(6)}, reason="学习心得未按要求提交，政治表现从严评定",
              now=at(7, 10, month=12), tz=TZ)
        accepted = evaluation.accept_self_scores(
            session=s, secretary=world(s, "S"), branch=s.get(Organization,
                                                             branch),
            period=NOV, now=at(7, 10, month=12))
        assert [m.person_id for m in accepted.accepted] == [world.people["A"]]
        assert accepted.skipped == [(world(s, "S").name, "不能给自己评分")]
    refused(db, "以下党员尚未评分，不能公示", lambda s: evaluation_publish.publish_branch_month(
        session=s, committee_actor=world(s, "P"),
        branch=s.get(Organization, branch), period=NOV,
        now=at(7, 11, month=12), tz=TZ))
    refused(db, "不能再申报该月事项", lambda s: declarations.declare(
        session=s, member=world(s, "A"), indicator_code="good_deed", description="好人好事",
        occurred_on=date(2026, 11, 28), now=at(7, 11, month=12)))
    with tx(db) as s:
        # C never self-evaluated: scored from the ledger (political 1 → 2, within the margin).
        score(session=s, secretary=world(s, "S"), member_id=world.people["C"], period=NOV,
              assessed={"political": D(2)}, reason="", now=at(7, 10, month=12), tz=TZ)
        score(session=s, secretary=world(s, "K"), member_id=world.people["S"], period=NOV,
              assessed={"morality": D(5)}, reason="带领支部开展志愿服务",
              now=at(7, 15, month=12), tz=TZ)
    assert [month_of(db, world, k).assessed_total for k in ("A", "B", "C", "S")] == [
        46, 15, 5, 23]
    assert month_of(db, world, "C").self_late
    assert status_of(db, world, branch).phase is BranchPhase.ready

    # --- Publication by the committee: scores enter the ledger, reviewed by the publisher. ---
    def publish(who: str) -> Callable[[Session], Any]:
        return lambda s: evaluation_publish.publish_branch_month(
            session=s, committee_actor=world(s, who),
            branch=s.get(Organization, branch), period=NOV,
            now=at(8, 10, month=12), tz=TZ)

    refused(db, "只有党委可以审定公示月度评价", publish("S"))
    refused(db, "本支部有由您评定的月度评分，需由其他党委成员审定公示", publish("K"))
    with tx(db) as s:
        publication = publish("P")(s)
        assert publication.branch_month.objection_deadline == at(11, 10, month=12)
        assert publication.groups_queued == 1
        assert "2026年11月月度评价公示" in publication.notice.text
        assert "公示期至 12月11日 10:00" in publication.notice.text
        scored = s.exec(select(LedgerEntry, EntryReview)
                        .join(EntryReview, col(EntryReview.entry_id) == LedgerEntry.id)
                        .where(LedgerEntry.source == EntrySource.ASSESSED)
                        .order_by(col(LedgerEntry.id))).all()
        assert [(e.person_id, e.indicator_code, e.count, e.created_by_id, r.reviewer_id)
                for e, r in scored] == [
            (world.people["S"], "conduct_review", 5, world.people["K"], world.people["P"]),
            (world.people["A"], "political_review", 8, world.people["S"], world.people["P"]),
            (world.people["A"], "discipline_review", 6, world.people["S"], world.people["P"]),
            (world.people["A"], "conduct_review", 10, world.people["S"], world.people["P"]),
            (world.people["A"], "kpi_completion", 8, world.people["S"], world.people["P"]),
            (world.people["B"], "political_review", 4, world.people["S"], world.people["P"]),
            (world.people["C"], "political_review", 1, world.people["S"], world.people["P"]),
        ]
        group_post = s.exec(select(OutboxMessage).where(
            OutboxMessage.kind == "evaluation-published")).one()
        assert group_post.target == "chat:g1"
        results = s.exec(select(OutboxMessage).where(
            OutboxMessage.kind == "evaluation-result")).all()
        assert len(results) == 4
        assert any("政治表现从严评定" in r.payload["text"] for r in results)
    refused(db, "本月评价已公示，无需重复公示", publish("P"))
    assert status_of(db, world, branch).phase is BranchPhase.publicity

    # --- An objection, upheld with a correcting entry after the window has closed. ---
    def objection(who: str, when: datetime) -> Callable[[Session], Any]:
        return lambda s: evaluation_publish.raise_objection(
            session=s, member=world(s, who), period=NOV, reason="学习心得已按时提交，被误驳回",
            now=when, tz=TZ)

    refused(db, "本月评价尚未公示", objection("X", at(9, 9, month=12)))
    with tx(db) as s:
        raised = objection("B", at(9, 9, month=12))(s)
        closing = evaluation_status.windows_closing(session=s, now=at(9, 9, month=12),
                                                    within=timedelta(days=3))
        assert [org.id for _, org in closing] == [branch]
    refused(db, "您的异议正在处理中", objection("B", at(9, 10, month=12)))
    refused(db, "异议期已于 12月11日 10:00 结束", objection("A", at(11, 10, month=12)))
    assert status_of(db, world, branch).objections_open == 1

    def answer(who: str, **kwargs: Any) -> Callable[[Session], Any]:
        return lambda s: evaluation_publish.answer_objection(
            session=s, actor=world(s, who), objection_id=raised.id, uphold=True,
            answer="经核实心得已提交，予以更正", now=at(11, 11, month=12),
            **{"correction_points": D(2), "indicator_code": "study_notes", **kwargs})

    refused(db, "不能答复自己提出的异议", answer("B"))
    refused(db, "只能答复本支部党员的异议", answer("A"))
    refused(db, "须给出更正的指标和分值", answer("S", correction_points=None))
    refused(db, r"更正分值须为指标“提交学习心得体会”分值（2 分）的正整数倍",
            answer("S", correction_points=D(3)))
    # online_study caps at 5 a month and B has 2: a correction of 4 would only count 3.
    refused(db, "该更正只会使本月积分变化 3 分",
            answer("S", correction_points=D(4), indicator_code="online_study"))
    refused(db, "异议期至 12月11日 10:00 结束，届时才能结账",
            lambda s: evaluation_publish.close_branch_month(
                session=s, actor=world(s, "P"),
                branch=s.get(Organization, branch), period=NOV,
                now=at(10, 9, month=12), tz=TZ))
    with tx(db) as s:
        waiting = evaluation_publish.close_due(session=s, now=at(11, 10, 30, month=12), tz=TZ)
        assert waiting.closed == [] and "还有未答复的异议" in waiting.waiting[0][1]
    with tx(db) as s:
        answered = answer("S")(s)
        correction = s.get(LedgerEntry, answered.correction_entry_id)
        assert (correction.points, correction.source, correction.period) == (
            2, EntrySource.ADJUSTMENT, NOV)
        assert s.exec(select(OutboxMessage).where(
            OutboxMessage.kind == "objection-answered")).one()

    # --- Close: the window has ended and nothing is open. ---
    with tx(db) as s:
        due = evaluation_publish.close_due(session=s, now=at(11, 12, month=12), tz=TZ)
        assert [org.id for org in due.closed] == [branch] and due.waiting == []
        results = {r.person_id: r.total for r in s.exec(
            select(MonthResult).where(MonthResult.period == NOV))}
    # By hand (xinluo; political / discipline / morality / role):
    #   A: online 3 + on time 2 + review 8 = 13 / attendance 6 + review 6 = 12 /
    #      volunteering 3 + review 10 = 13 / kpi 8                          → 46
    #   B: online 2 + review 4 + corrected study notes 2 = 8 / attendance 9  → 17
    #   C: online 1 + review 1 = 2 / attendance 3                            → 5
    #   S: online 4 + on time 2 = 6 / attendance 12 / review 5               → 23
    assert {key: results[world.people[key]] for key in ("A", "B", "C", "S")} == {
        "A": 46, "B": 17, "C": 5, "S": 23}
    refused(db, "本月已结账，异议期已过", objection("A", at(11, 13, month=12)))
    refused(db, "本月已结账，不能再评分", lambda s: score(
        session=s, secretary=world(s, "S"), member_id=world.people["A"], period=NOV,
        assessed={}, reason="", now=at(12, 9, month=12), tz=TZ))
    final = status_of(db, world, branch)
    assert (final.members, final.self_evaluated, final.late, final.scored, final.published,
            final.objections_open, final.phase) == (4, 3, 2, 4, 4, 0, BranchPhase.closed)
    assert status_of(db, world, world.other_branch).phase is BranchPhase.self_evaluation

    # --- Every move is in the transition log (and the audit log), with who and why. ---
    system = ("close", "published", "closed", "system")
    publish_row = ("publish", "scored", "published", "组织部P")
    expected = {
        "A": [("confirm", "open", "self_evaluated", world.people["A"]),
              ("accept", "self_evaluated", "scored", world.people["S"]), publish_row, system],
        "B": [("confirm", "open", "self_evaluated", world.people["B"]),
              ("score", "self_evaluated", "scored", world.people["S"]), publish_row,
              ("object", "published", "objected", world.people["B"]),
              ("answer", "objected", "published", world.people["S"]), system],
        "C": [("score", "open", "scored", world.people["S"]), publish_row, system],
        "S": [("confirm", "open", "self_evaluated", world.people["S"]),
              ("score", "self_evaluated", "scored", world.people["K"]), publish_row, system],
    }
    with tx(db) as s:
        names = {p.id: p.name for p in s.exec(select(Person))}
        for key, moves in expected.items():
            logged = history(session=s, month=month_in(s, world, key))
            want = [(a_, f, t, names[w] if isinstance(w, int) else w) for a_, f, t, w in moves]
            assert [(r.action, r.from_state, r.to_state, r.actor_label) for r in logged] == want
        b_reason = [r.reason for r in history(session=s, month=month_in(s, world, "B"))]
        assert "政治表现从严评定" in b_reason[1] and "被误驳回" in b_reason[3]
        branch_moves = s.exec(select(EvaluationTransition).where(
            col(EvaluationTransition.branch_month_id).is_not(None))).all()
        assert [(r.action, r.actor_label) for r in branch_moves] == [
            ("publish", "组织部P"), ("close", "system")]
        audited = s.exec(select(AuditLog).where(AuditLog.entity == "member_month")).all()
        assert len(audited) == sum(len(m) for m in expected.values())
    with pytest.raises(DatabaseError), tx(db) as s:
        s.execute(update(EvaluationTransition).values(reason="改写"))


def test_spot_checks_are_reproducible_and_a_failed_one_reverses_the_entry(db, world):
    with tx(db) as s:
        entries = []
        for key in ("A", "B", "C", "K"):
            entry = record_entry(session=s, member_id=world.people[key],
                                 indicator_code="study_notes", occurred_on=date(2026, 11, 5),
                                 reason="学习心得", actor=Actor(key, world.people[key]),
                                 evidence=[{"name": "心得.pdf"}])
            review_entry(session=s, entry_id=entry.id, actor=Actor("R", world.people["R"]),
                         approve=True)
            entries.append(entry.id)
    refused(db, "只有党委可以组织抽查", lambda s: spot_checks.draw_spot_check(
        session=s, committee_actor=world(s, "S"), org=s.get(Organization,
                                                            world.branch),
        period=NOV, size=2, now=at(20, 9)))

    def draw(**kwargs: Any) -> SpotCheck:
        with tx(db) as s:
            return spot_checks.draw_spot_check(
                session=s, committee_actor=world(s, "P"),
                org=s.get(Organization, world.committee), period=NOV,
                now=at(20, 9), **kwargs)

    refused(db, "随机种子须为 0 至 2147483647 之间的整数", lambda s: spot_checks.draw_spot_check(
        session=s, committee_actor=world(s, "P"), org=s.get(Organization, world.committee),
        period=NOV, size=2, seed=2**31, now=at(20, 9)))
    check = draw(size=2, seed=7)
    assert check.population == sorted(entries)
    assert check.drawn == draw_sample(entries, seed=7, size=2)
    assert check.drawn == random.Random(7).sample(sorted(entries), 2)
    assert draw(size=2, seed=7).drawn == check.drawn  # the same seed draws the same again
    assert draw(percent=D(50), seed=99).drawn == random.Random(99).sample(sorted(entries), 2)
    unseeded = draw(size=1)
    assert unseeded.drawn == random.Random(unseeded.seed).sample(sorted(entries), 1)

    everyone = draw(percent=D(100), seed=1)
    with tx(db) as s:
        items = {i.entry_id: i.id for i in spot_checks.spot_check_items(session=s,
                                                                        check=everyone)}
    refused(db, "不能抽查本人的申报", lambda s: spot_checks.record_spot_check_result(
        session=s, actor=world(s, "K"), item_id=items[entries[3]], passed=True, reason="",
        now=at(21, 9), tz=TZ))
    failing = items[entries[0]]
    refused(db, "抽查不通过时须写明理由", lambda s: spot_checks.record_spot_check_result(
        session=s, actor=world(s, "P"), item_id=failing, passed=False, reason=" ",
        now=at(21, 9), tz=TZ))
    with tx(db) as s:
        before = live_scores(session=s, org=s.get(Organization,
                                                  world.branch),
                             person_ids=[world.people["A"]], period=NOV)[world.people["A"]]
        item = spot_checks.record_spot_check_result(
            session=s, actor=world(s, "P"), item_id=failing, passed=False,
            reason="心得为网络转载", now=at(21, 9), tz=TZ)
        reversal = s.get(LedgerEntry, item.reversal_entry_id)
        assert (reversal.reversal_of_id, reversal.points, reversal.reason) == (
            entries[0], -2, "抽查不通过：心得为网络转载")
        passed = spot_checks.record_spot_check_result(
            session=s, actor=world(s, "P"), item_id=items[entries[1]], passed=True,
            reason="", now=at(21, 9), tz=TZ)
        assert passed.reversal_entry_id is None
    with tx(db) as s:
        after = live_scores(session=s, org=s.get(Organization, world.branch),
                            person_ids=[world.people["A"]], period=NOV)[world.people["A"]]
        assert after.total == before.total - 2
        remaining = spot_checks.checkable_entries(
            session=s, org=s.get(Organization, world.committee), period=NOV)
        assert remaining == entries[1:]
    refused(db, "已登记结果", lambda s: spot_checks.record_spot_check_result(
        session=s, actor=world(s, "P"), item_id=failing, passed=True, reason="",
        now=at(21, 9), tz=TZ))


def test_evidence_uploads_are_checked_and_stored_safely(db, world, tmp_path):
    storage = tmp_path / "evidence"
    with tx(db) as s:
        draft = declarations.declare(session=s, member=world(s, "A"),
                                     indicator_code="volunteering", description="志愿服务",
                                     occurred_on=date(2026, 11, 15), now=at(20, 9))

    def attach(data: bytes, *, who: str = "A", content_type: str = "",
               filename: str = "photo", max_bytes: int = 4096) -> Callable[[Session], Any]:
        return lambda s: evidence.attach_evidence(
            session=s, member=world(s, who), declaration_id=draft.id, filename=filename,
            content_type=content_type, data=data, storage_dir=storage, now=at(20, 9),
            max_bytes=max_bytes)

    refused(db, "超过 4 KB 上限", attach(PNG + b"\x00" * 5000))
    refused(db, "只能上传 JPG、PNG、WEBP 图片或 PDF 文件", attach(b"MZ\x90\x00 program"))
    refused(db, "只能上传 JPG、PNG、WEBP 图片或 PDF 文件", attach(b"#!/bin/sh\nrm -rf /\n"))
    refused(db, r"文件内容与声明的类型（application/pdf）不符",
            attach(PNG, content_type="application/pdf"))
    refused(db, "文件是空的", attach(b""))
    refused(db, f"找不到申报 D{draft.id}", attach(PNG, who="B"))
    assert not storage.exists()  # nothing refused reached the disk
    with tx(db) as s:
        stored = attach(WEBP, content_type="image/webp", filename="../../evil.sh.webp")(s)
        attach(b"\xff\xd8\xff\xe0" + b"\x00" * 32, content_type="image/jpeg; q=1")(s)
    path = storage / stored.stored_name
    assert stored.original_name == "evil.sh.webp" and stored.content_type == "image/webp"
    assert path.parent == storage / NOV and path.suffix == ".webp"
    assert "evil" not in path.name and len(path.stem) == 32
    assert path.read_bytes() == WEBP and not os.stat(path).st_mode & (stat.S_IXUSR
                                                                       | stat.S_IXGRP
                                                                       | stat.S_IXOTH)
    with tx(db) as s:
        for _ in range(7):
            attach(PNG)(s)
    refused(db, "每项申报最多上传 9 个文件", attach(PNG))
    with tx(db) as s:
        declarations.submit_declaration(session=s, member=world(s, "A"),
                                        declaration_id=draft.id, now=at(20, 10))
        entry = s.exec(select(LedgerEntry).where(LedgerEntry.id == s.get(
            Declaration, draft.id).entry_id)).one()
        assert len(entry.evidence) == 9 and entry.evidence[0]["name"] == "evil.sh.webp"
    refused(db, f"申报 D{draft.id} 已提交", attach(PNG))

