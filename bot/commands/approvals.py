"""/待办, /批准, /驳回 and the card buttons: leave decided by the secretary, declarations by
their designated reviewers (指定专人审核), and the evaluation's scoring and objections to do."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.config import Settings
from app.domain.ids import record_id
from app.domain.vocab import Role
from app.links import reviews_url
from app.models import EntrySource, LeaveStatus, LedgerEntry, Person
from app.services.activities import decide_leave, pending_leaves
from app.services.declarations import declarations_to_review, review_declaration
from app.services.ledger import Actor, indicator_name, pending_in_branches, review_entry
from app.services.notices import queue_leave_decided
from bot.commands import evaluation
from bot.commands.points import fmt
from bot.dispatcher import Context, Router, UserError
from bot.types import CardAction, Outcome, Reply

router = Router()
# Everyone holding a role beyond 党员 may have something to decide: leave (secretaries),
# declarations (申报审核员 and the indicators' awarders), scoring and objections (secretaries,
# the committee). The services check each item; a plain member is refused at the door.
DECIDERS = tuple(role for role in Role if role is not Role.member)
CARD_REJECT_REASON = "书记通过卡片驳回"


def _entry_line(ctx: Context, entry: LedgerEntry, name: str) -> str:
    kind = "申报" if entry.source == EntrySource.DECLARED else "待审核记录"
    indicator = indicator_name(session=ctx.session, entry=entry)
    return f"- {kind} S{entry.id}：{name}，{indicator} {fmt(entry.points)} 分，{entry.reason}"


def _review_lines(ctx: Context) -> list[str]:
    """Leave to decide, declarations the person reviews, other pending entries of their branches."""
    lines = []
    for leave in pending_leaves(session=ctx.session, secretary=ctx.person):
        who = ctx.session.get(Person, leave.person_id)
        lines.append(f"- 请假 Q{leave.id}：{who.name if who else '?'}，活动序号 "
                     f"{leave.activity_id}，理由：{leave.reason}")
    declared = declarations_to_review(session=ctx.session, reviewer=ctx.person)
    lines.extend(_entry_line(ctx, entry, member.name) for entry, member in declared)
    # Declarations go to their designated reviewers (above); the secretary still approves the
    # branch's other pending entries.
    lines.extend(_entry_line(ctx, entry, name)
                 for entry, name in pending_in_branches(session=ctx.session, secretary=ctx.person)
                 if entry.source != EntrySource.DECLARED)
    if lines:
        lines.append("批准：/批准 编号；驳回：/驳回 编号 理由")
    if declared:
        lines.append(f"申报的佐证材料：{reviews_url(ctx.settings)}")
    return lines


@router.command("待办", summary="查看待我处理的请假、申报、评分和异议", roles=DECIDERS,
                aliases=("待审批",))
def todo(ctx: Context) -> Reply:
    """Leave, declarations and entries to decide, scoring to do and objections to answer."""
    lines = [*_review_lines(ctx), *evaluation.todo_lines(ctx)]
    if not lines:
        return Reply("目前没有待您处理的事项。", mention_sender=True)
    return Reply("\n".join(["### 待办", *lines]), title="待办", markdown=True,
                 mention_sender=True)


def _number(ctx: Context, verb: str) -> tuple[str, int]:
    if not ctx.args:
        raise UserError(f"请写上编号，例如 /{verb} Q12（请假）或 /{verb} S7（申报）。")
    text = ctx.args[0].upper()
    kind, digits = (text[0], text[1:]) if text[:1] in ("Q", "S") else ("Q", text)
    number = record_id(digits)
    if number is None:
        raise UserError(f"看不懂编号“{ctx.args[0]}”，应为 Q12 或 S7 这样的编号。")
    return kind, number


def _decide(ctx: Context, *, approve: bool) -> Outcome:
    verb = "批准" if approve else "驳回"
    kind, number = _number(ctx, verb)
    reason = " ".join(ctx.args[1:])
    if not approve and not reason.strip():
        raise UserError(f"驳回时请写明理由，例如：/驳回 {ctx.args[0]} 本次会议需全员参加")
    if kind == "S":
        return Outcome(Reply(_review(ctx, number, approve=approve, reason=reason),
                             mention_sender=True))
    leave, changed = decide_leave(session=ctx.session, leave_id=number, decider=ctx.person,
                                  approve=approve, reason=reason, now=ctx.now)
    if not changed:
        return Outcome(Reply(f"请假申请 Q{number} 此前已{verb}，无需重复操作。"))
    queue_leave_decided(session=ctx.session, leave=leave)
    return Outcome(Reply(f"已{verb}请假申请 Q{number}。", mention_sender=True))


def _review(ctx: Context, entry_id: int, *, approve: bool, reason: str) -> str:
    """Decide a pending entry: a declaration as its designated reviewer, anything else as
    before (the ledger refuses one's own)."""
    verb = "批准" if approve else "驳回"
    entry = ctx.session.get(LedgerEntry, entry_id)
    if entry is not None and entry.source == EntrySource.DECLARED:
        review_declaration(session=ctx.session, reviewer=ctx.person, entry_id=entry_id,
                           approve=approve, reason=reason)
        return f"已{verb}申报 S{entry_id}，结果已私信告知申报人。"
    review_entry(session=ctx.session, entry_id=entry_id,
                 actor=Actor(ctx.person.name, ctx.person.id), approve=approve, reason=reason)
    return f"已{verb}记录 S{entry_id}。"


@router.command("批准", summary="批准请假或申报", usage="/批准 编号", roles=DECIDERS,
                aliases=("同意",))
def approve(ctx: Context) -> Outcome:
    """Approve a leave request (Q12 or 12) or a declaration (S7)."""
    return _decide(ctx, approve=True)


@router.command("驳回", summary="驳回请假或申报", usage="/驳回 编号 理由", roles=DECIDERS,
                aliases=("拒绝",))
def reject(ctx: Context) -> Outcome:
    """Reject a leave request or a declaration, with a reason."""
    return _decide(ctx, approve=False)


def _card(session: Session, person: Person, action: CardAction, now: datetime,
          *, approve: bool) -> Outcome:
    leave_id = record_id(action.params.get("leave_id", ""))
    if leave_id is None:
        raise UserError("按钮已失效")
    leave, changed = decide_leave(session=session, leave_id=leave_id, decider=person,
                                  approve=approve, reason="" if approve else CARD_REJECT_REASON,
                                  now=now)
    verdict = LeaveStatus(leave.status).label
    update = Reply(f"请假申请 Q{leave.id}：{verdict}（{person.name}）", title="请假申请",
                   card_id=action.card_id)
    if changed:
        queue_leave_decided(session=session, leave=leave)
    return Outcome(update)


@router.card_action("leave.approve")
def approve_by_card(session: Session, person: Person, action: CardAction,
                    now: datetime, _settings: Settings) -> Outcome:
    """批准 on a leave card."""
    return _card(session, person, action, now, approve=True)


@router.card_action("leave.reject")
def reject_by_card(session: Session, person: Person, action: CardAction,
                   now: datetime, _settings: Settings) -> Outcome:
    """驳回 on a leave card."""
    return _card(session, person, action, now, approve=False)
