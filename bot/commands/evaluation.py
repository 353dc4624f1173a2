"""/申报, /自评, /评分, /采纳自评, /公示, /异议, /答复异议, /评议进度: the monthly evaluation
(一月一初评) from the chat. The services decide who may do what and refuse in Chinese; these
commands read the arguments, pick the month and the branch, and word the answers.

Which month: the month under evaluation is the latest one whose self-evaluation has opened (the
scheme's `opens_day`, the 25th by default). On 26 November that is November; on 3 December it
is still November (the secretary scores it, the committee publishes it); from 25 December it is
December. Every evaluation command also takes 本月, 上月 or 2026-11. A declaration is dated today
unless a month is named (an earlier month: its last day). An objection goes to the member's
latest published month.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlmodel import Session, col, select

from app.config import Settings
from app.domain.evaluation import BranchPhase, Capacity, EvaluationRefused, MonthState
from app.domain.ids import record_id
from app.domain.periods import month_key, month_label, parse_month
from app.domain.scheme import Indicator, Scheme
from app.domain.vocab import OrgKind, Role
from app.links import branch_evaluation_url, declaration_url, evaluation_url
from app.models import (
    MemberMonth,
    Objection,
    ObjectionStatus,
    Organization,
    Person,
    RoleAssignment,
)
from app.services import orgs
from app.services.access import secretary_branches
from app.services.declarations import declarable_indicators, declare
from app.services.evaluation import (
    SelfEvaluationForm,
    accept_self_scores,
    confirm_self_evaluation,
    evaluated_period,
    score_member,
    self_evaluation_form,
)
from app.services.evaluation_base import branch_members, find_month, last_day, scheme_for
from app.services.evaluation_notices import when_text
from app.services.evaluation_publish import answer_objection, publish_branch_month, raise_objection
from app.services.evaluation_roles import is_branch_secretary, is_committee_over, scorer_of
from app.services.evaluation_status import (
    BranchProgress,
    branches_pending_scoring,
    evaluation_status,
)
from app.services.notices import Notice, send_to_person
from app.services.people import find_person
from app.services.reports import branch_of
from bot.commands.points import fmt, period_of
from bot.dispatcher import Context, Router, UserError
from bot.types import Button, CardAction, Outcome, Reply

router = Router()
# Secretaries score and answer; the committee (党委工作人员, 管理员, and a 党委书记, who holds
# 书记 on the committee node) publishes. The services check the organisation each acts over.
LEADERS = (Role.branch_secretary, Role.committee_staff, Role.admin)
CONFIRM = "evaluation.confirm"
OBJECTION_RAISED_KIND = "objection-raised"
DECLARE_USAGE = "/申报 事项 [上月|2026-10] 说明"
SCORE_USAGE = "/评分 姓名 维度=分数 … [理由]"
ANSWER_USAGE = "/答复异议 编号 维持|更正 [指标 分值] 说明"
_MONTH_WORD = re.compile(r"^\d{4}-\d+$")
_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?分?$")
_DIMENSION_SCORE = re.compile(r"^[^=:]+[=:][-+]?\d+(?:\.\d+)?分?$")

T = TypeVar("T")


# ----------------------------------------------------------------- words, months, branches


def _pick(word: str, options: Iterable[tuple[str, str, T]]) -> list[T]:
    """What `word` names among (code, name, value): an exact code or name, else every name
    containing it (so 志愿服务 finds 参加志愿服务活动 when nothing else contains it)."""
    listed = list(options)
    exact = [value for code, name, value in listed if word.lower() == code.lower() or word == name]
    return exact or [value for _, name, value in listed if word in name]


def _period_word(ctx: Context, word: str) -> str | None:
    """The month a word names (本月, 上月, 2026-11; nonsense like 2026-13 gets a hint), or None."""
    if word in ("本月", "上月") or _MONTH_WORD.match(word):
        # The same words /我的积分 takes.
        return period_of(replace(ctx, args=[word]))
    return None


def _take_period(ctx: Context, words: Sequence[str]) -> tuple[str | None, list[str]]:
    """The first word naming a month, and the other words (for commands without free text)."""
    for i, word in enumerate(words):
        period = _period_word(ctx, word)
        if period is not None:
            return period, [*words[:i], *words[i + 1:]]
    return None, list(words)


def _evaluated_month(ctx: Context, org: Organization) -> str:
    """The month under evaluation at `org`."""
    return evaluated_period(session=ctx.session, org=org, now=ctx.now, tz=ctx.settings.tz)


def _assigned_orgs(ctx: Context) -> list[Organization]:
    found = ctx.session.exec(
        select(Organization)
        .join(RoleAssignment, col(RoleAssignment.organization_id) == Organization.id)
        .where(RoleAssignment.person_id == ctx.person.id)
    ).all()
    return list({org.id: org for org in found}.values())


def _committee_orgs(ctx: Context) -> list[Organization]:
    """The topmost subtrees the person acts for the committee over."""
    held = [org for org in _assigned_orgs(ctx)
            if is_committee_over(session=ctx.session, person=ctx.person, org=org)]
    return [org for org in held
            if not any(org.path != top.path and org.path.startswith(top.path) for top in held)]


def _own_branches(ctx: Context) -> list[Organization]:
    """The branches the person is secretary of (a 党委书记's committee node is not one)."""
    return [org for org in secretary_branches(session=ctx.session, person=ctx.person)
            if org.kind == OrgKind.branch]


def _branches_in_scope(ctx: Context) -> list[Organization]:
    """Every branch the person looks after, as its secretary or for the committee."""
    found = {b.id: b for b in _own_branches(ctx)}
    for top in _committee_orgs(ctx):
        found.update((b.id, b) for b in ctx.session.exec(
            select(Organization).where(col(Organization.path).startswith(top.path),
                                       Organization.kind == OrgKind.branch)))
    return sorted(found.values(), key=lambda b: b.path)


def _may_act_on(ctx: Context, branch: Organization) -> bool:
    return (is_branch_secretary(session=ctx.session, person=ctx.person, branch=branch)
            or is_committee_over(session=ctx.session, person=ctx.person, org=branch))


def _named_branch(ctx: Context, name: str) -> Organization:
    """A branch by its full name or path, else by a part of the name among the person's own."""
    org = orgs.find_by_path_or_name(ctx.session, name)
    if org is not None and org.kind in (OrgKind.branch, OrgKind.general_branch):
        return org
    found = _pick(name, (("", b.name, b) for b in _branches_in_scope(ctx)))
    if len(found) == 1:
        return found[0]
    raise UserError(f"找不到支部“{name}”，或有重名，请写支部全称（如 生产第一党支部）。")


def _branch(ctx: Context, words: Sequence[str], verb: str) -> Organization:
    """The branch named in `words`; else this group's branch; else the one the person runs."""
    if words:
        return _named_branch(ctx, " ".join(words))
    if ctx.group is not None:
        org = ctx.session.get(Organization, ctx.group.organization_id)
        assert org is not None
        return org
    own = _own_branches(ctx)
    if len(own) == 1:
        return own[0]
    raise UserError(f"请写明支部名称，例如 /{verb} 生产第一党支部（在支部群里发送可省略）。")


# ------------------------------------------------------------------------- 申报


def _declarable_text(indicators: list[Indicator], period: str, head: str = "") -> str:
    lines = [head or f"### {month_label(period)}可申报的事项"]
    for i in indicators:
        evidence = "，须附佐证材料" if i.evidence_required else ""
        lines.append(f"- {i.name}（{fmt(i.points)} 分{evidence}）")
    lines.append("申报请发送：/申报 事项名称 说明，例如 /申报 志愿服务 参加社区义务植树")
    return "\n".join(lines)


def _declared_day(ctx: Context, period: str | None) -> date:
    """Today, or for an earlier month named, its last day (what happened is dated in it)."""
    today = ctx.now.astimezone(ctx.settings.tz).date()
    if period is None or period == month_key(ctx.now, ctx.settings.tz):
        return today
    return last_day(period)  # never a month to come: period_of refuses those


@router.command("申报", summary="申报加分事项（附佐证材料）", usage=DECLARE_USAGE)
def declare_item(ctx: Context) -> Reply:
    """Declare an item: submitted at once, or a link to attach evidence first."""
    words = list(ctx.args)
    listed = _period_word(ctx, words[0]) if len(words) == 1 else None
    if not words or listed:
        period = listed or month_key(ctx.now, ctx.settings.tz)
        indicators = declarable_indicators(session=ctx.session, member=ctx.person, period=period)
        return Reply(_declarable_text(indicators, period), title="申报", markdown=True,
                     mention_sender=True)
    named, rest = words[0], words[1:]
    period = _period_word(ctx, rest[0]) if rest else None
    if period is not None:
        rest = rest[1:]
    day = _declared_day(ctx, period)
    month = f"{day:%Y-%m}"
    indicators = declarable_indicators(session=ctx.session, member=ctx.person, period=month)
    found = _pick(named, ((i.code, i.name, i) for i in indicators))
    if len(found) != 1:
        head = (f"“{named}”对应多个事项，请写得更完整：" if found
                else f"没有可申报的事项“{named}”。可申报的有：")
        return Reply(_declarable_text(found or indicators, month, head), title="申报",
                     markdown=True, mention_sender=True)
    indicator = found[0]
    if not rest:
        raise UserError(f"请写明申报说明，例如：/申报 {indicator.name} 参加社区义务植树")
    draft = declare(session=ctx.session, member=ctx.person, indicator_code=indicator.code,
                    description=" ".join(rest), occurred_on=day, now=ctx.now)
    what = f"{indicator.name}，{fmt(indicator.points)} 分"
    if draft.entry_id is None:
        return Reply(f"已创建申报 D{draft.id}（{what}）。该事项须附佐证材料：请打开下面的链接"
                     "上传照片或文件，然后提交审核。\n"
                     f"{declaration_url(ctx.settings, draft.id or 0)}", title="申报",
                     mention_sender=True)
    return Reply(f"已提交申报 S{draft.entry_id}（{what}），无需佐证材料，等待指定审核人审核，"
                 "结果会私信通知您。", title="申报", mention_sender=True)


# ------------------------------------------------------------------------- 自评


def _form_lines(form: SelfEvaluationForm) -> list[str]:
    """The month per dimension: ledger, self and assessed scores, and the highest reachable."""
    lines = []
    for d in form.dimensions:
        parts = [f"台账 {fmt(d.ledger)}"]
        if d.self_score is not None:
            parts.append(f"自评 {fmt(d.self_score)}")
        if d.assessed is not None:
            parts.append(f"评定 {fmt(d.assessed)}")
        lines.append(f"- {d.name}：{'，'.join(parts)}（最高 {fmt(d.high)}）")
    totals = [f"台账 {fmt(form.ledger_total)}"]
    if form.self_total is not None:
        totals.append(f"自评 {fmt(form.self_total)}")
    if form.assessed_total is not None:
        totals.append(f"评定 {fmt(form.assessed_total)}")
    lines.append(f"合计：{'，'.join(totals)}")
    if form.note:
        lines.append(f"自评说明：{form.note}")
    if form.assessed_reason:
        lines.append(f"评分理由：{form.assessed_reason}")
    if form.pending:
        lines.append(f"另有 {len(form.pending)} 条记录待审核，审核通过后计入台账。")
    return lines


def _window_line(ctx: Context, form: SelfEvaluationForm, on_time: Indicator | None) -> str:
    """Where the self-evaluation stands, in one line (`on_time`: what confirming in time earns)."""
    if form.state is not MonthState.open:
        return f"状态：{form.state.label}"
    opens, due = form.window.opens_at.astimezone(ctx.settings.tz), form.window.last_day
    if ctx.now < form.window.opens_at:
        return f"自评尚未开放，将于{opens.month}月{opens.day}日开放。"
    if form.late:
        return f"自评已于{due.month}月{due.day}日截止，现在确认将记为逾期。"
    bonus = f"，按时确认记“{on_time.name}”" if on_time else ""
    return f"请在{due.month}月{due.day}日前确认{bonus}；确认后由支部书记评分。"


def _confirmed_text(month: MemberMonth) -> str:
    late = "（逾期）" if month.self_late else ""
    return (f"已确认{month_label(month.period)}自评{late}：合计 {fmt(month.self_total)} 分。"
            "支部书记评分后将在支部公示。")


def _confirm(session: Session, member: Person, period: str, now: datetime,
             settings: Settings) -> MemberMonth:
    """Confirm the self-evaluation as the ledger prefilled it."""
    return confirm_self_evaluation(session=session, member=member, period=period,
                                   adjustments=None, note="", now=now, tz=settings.tz)


@router.command("自评", summary="查看并确认月度自评", usage="/自评 [确认] [上月|2026-11]")
def self_evaluation(ctx: Context) -> Reply:
    """The month prefilled from the ledger with a 确认 button; `/自评 确认` confirms as is."""
    period, words = _take_period(ctx, ctx.args)
    if words not in ([], ["确认"]):
        raise UserError(f"看不懂“{' '.join(words)}”。发送 /自评 查看本月自评，"
                        "/自评 确认 按台账确认，也可加月份，如 /自评 上月。")
    period = period or _evaluated_month(ctx, branch_of(ctx.session, ctx.person))
    if words:
        month = _confirm(ctx.session, ctx.person, period, ctx.now, ctx.settings)
        return Reply(_confirmed_text(month), title="月度自评", mention_sender=True)
    form = self_evaluation_form(session=ctx.session, member=ctx.person, period=period,
                                now=ctx.now, tz=ctx.settings.tz)
    scheme = scheme_for(session=ctx.session, org=branch_of(ctx.session, ctx.person),
                        period=period)
    on_time = scheme.indicator_by_code.get(scheme.evaluation.on_time or "")
    lines = [f"### {ctx.person.name} · {month_label(period)}自评",
             _window_line(ctx, form, on_time),
             *_form_lines(form), f"调整分数或填写说明：{evaluation_url(ctx.settings, period)}"]
    if form.state is not MonthState.open or ctx.now < form.window.opens_at:
        return Reply("\n".join(lines), title="月度自评", markdown=True, mention_sender=True)
    # The card says whose it is: a click by anyone else is refused (see confirm_by_card).
    button = Button("确认", CONFIRM, {"period": period, "member": str(ctx.person.id)},
                    f"/自评 确认 {period}")
    return Reply("\n".join(lines), title="月度自评", markdown=True, buttons=(button,),
                 mention_sender=True, card_id=f"evaluation-self-{ctx.person.id}-{period}")


@router.card_action(CONFIRM)
def confirm_by_card(session: Session, person: Person, action: CardAction, now: datetime,
                    settings: Settings) -> Outcome:
    """确认 on a self-evaluation card: only by the member it was made for, and only once."""
    period = action.params.get("period", "")
    try:
        parse_month(period)
    except ValueError:
        raise UserError("按钮已失效，请重新发送 /自评。") from None
    if action.params.get("member") != str(person.id):
        raise UserError("这是其他同志的自评卡片。请发送 /自评 查看您本人的自评。")
    month = find_month(session=session, person_id=person.id or 0, period=period)
    if month is None or month.self_confirmed_at is None:
        month = _confirm(session, person, period, now, settings)
    # A second click (or a redelivered one) shows the same confirmation rather than a refusal.
    return Outcome(Reply(_confirmed_text(month), title="月度自评", card_id=action.card_id))


# ------------------------------------------------------------------------- 评分


def _member(ctx: Context, word: str) -> Person:
    """A member by account or phone, else by name (among namesakes, the one the asker scores)."""
    found = find_person(session=ctx.session, key=word)
    if found is not None:
        return found
    named = list(ctx.session.exec(
        select(Person).where(Person.name == word, col(Person.active).is_(True))))
    if len(named) > 1:
        named = [p for p in named if _may_act_on(ctx, branch_of(ctx.session, p))]
    if len(named) == 1:
        return named[0]
    if named:
        raise UserError(f"有多位名为“{word}”的党员，请改写其账号或手机号。")
    raise UserError(f"找不到党员“{word}”，请写姓名、账号或手机号。")


def _split_scores(ctx: Context, words: Sequence[str]) -> tuple[str | None, list[str], str]:
    """(month, score words, reason): scores and a month come first, the reason after them."""
    period: str | None = None
    scores: list[str] = []
    for i, word in enumerate(words):
        named = _period_word(ctx, word) if period is None else None
        if named is not None:
            period = named
        elif _DIMENSION_SCORE.match(word) or _NUMBER.match(word):
            scores.append(word)
        else:
            return period, scores, " ".join(words[i:])
    return period, scores, ""


def _points(text: str) -> Decimal:
    return Decimal(text.removesuffix("分"))


def _assessed(scheme: Scheme, scores: list[str]) -> Decimal | dict[str, Decimal]:
    """A total (one number) or scores by dimension (政治合格=13, 政治=13, political:13)."""
    pairs = [s.replace(":", "=") for s in scores if not _NUMBER.match(s)]
    if len(scores) > 1 and len(pairs) != len(scores):
        raise UserError("请只写一个总分，或逐项写“维度=分数”，不要混写。")
    if not pairs:
        return _points(scores[0])
    names = "、".join(d.name for d in scheme.dimensions)
    assessed: dict[str, Decimal] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        found = _pick(key, ((d.code, d.name, d.code) for d in scheme.dimensions))
        if len(found) != 1:
            raise UserError(f"看不懂维度“{key}”。维度有：{names}")
        assessed[found[0]] = _points(value)
    return assessed


def _scored_text(member: Person, scheme: Scheme, month: MemberMonth) -> str:
    names = {d.code: d.name for d in scheme.dimensions}
    parts = "、".join(f"{names.get(code, code)} {fmt(Decimal(value))}"
                      for code, value in (month.assessed_scores or {}).items())
    why = f"理由：{month.assessed_reason}" if month.assessed_reason else "（与自评相近，未填理由）"
    return (f"已评定 {member.name} {month_label(month.period)}综合评分：合计 "
            f"{fmt(month.assessed_total)} 分（{parts}）。{why}")


@router.command("评分", summary="查看或评定党员的月度综合评分（书记；党委评支部书记）",
                usage=SCORE_USAGE, roles=LEADERS)
def score(ctx: Context) -> Reply:
    """Without arguments: who is still to score; with a name: their month; with scores: score."""
    if not ctx.args:
        return _scoring_list(ctx)
    member = _member(ctx, ctx.args[0])
    branch = branch_of(ctx.session, member)
    period, scores, reason = _split_scores(ctx, ctx.args[1:])
    period = period or _evaluated_month(ctx, branch)
    if not scores:
        if reason:
            raise UserError(f"没看到分数。请按格式发送：{SCORE_USAGE}，"
                            "例如 /评分 张三 政治合格=13 学习心得质量高。")
        return _member_view(ctx, member, branch, period)
    scheme = scheme_for(session=ctx.session, org=branch, period=period)
    month = score_member(session=ctx.session, secretary=ctx.person, member_id=member.id or 0,
                         period=period, assessed=_assessed(scheme, scores), reason=reason,
                         now=ctx.now, tz=ctx.settings.tz)
    return Reply(_scored_text(member, scheme, month), title="月度评分", mention_sender=True)


def _member_view(ctx: Context, member: Person, branch: Organization, period: str) -> Reply:
    """A member's month as the scorer sees it before scoring."""
    if not _may_act_on(ctx, branch):
        raise UserError("只能查看本支部党员的月度评价。")
    form = self_evaluation_form(session=ctx.session, member=member, period=period, now=ctx.now,
                                tz=ctx.settings.tz)
    lines = [f"### {member.name} · {month_label(period)}", f"状态：{form.state.label}",
             *_form_lines(form),
             f"评分：/评分 {member.name} 维度=分数 … 理由（与自评相差较大时须写理由）"]
    return Reply("\n".join(lines), title="月度评分", markdown=True, mention_sender=True)


@dataclass(frozen=True)
class ScoringDue:
    """Members of one branch month the person still has to score, by whether they self-rated."""

    branch: Organization
    period: str
    scorer: Capacity
    ready: list[tuple[Person, MemberMonth]]
    not_self_evaluated: list[Person]


def _due_in(ctx: Context, top: Organization, period: str, scorer: Capacity) -> list[ScoringDue]:
    """Members under `top` not yet scored whom the person scores in the capacity `scorer`."""
    due: list[ScoringDue] = []
    for branch, people in branches_pending_scoring(session=ctx.session, org=top, period=period):
        months = [(p, find_month(session=ctx.session, person_id=p.id or 0, period=period))
                  for p in people if p.id != ctx.person.id
                  and scorer_of(session=ctx.session, member=p, branch=branch) is scorer]
        ready = [(p, m) for p, m in months
                 if m is not None and m.state == MonthState.self_evaluated]
        waiting = [p for p, m in months if m is None or m.state == MonthState.open]
        if ready or waiting:
            due.append(ScoringDue(branch, period, scorer, ready, waiting))
    return due


def _scoring_due(ctx: Context) -> list[ScoringDue]:
    """What the person still scores in the month under evaluation: their branches' members,
    and for the committee the branch secretaries."""
    tops = [(b, Capacity.secretary) for b in _own_branches(ctx)]
    tops += [(c, Capacity.committee) for c in _committee_orgs(ctx)]
    due: list[ScoringDue] = []
    for top, scorer in tops:
        period = _evaluated_month(ctx, top)
        try:
            scheme_for(session=ctx.session, org=top, period=period)
        except EvaluationRefused:
            continue  # a month without a scheme is not evaluated
        due.extend(_due_in(ctx, top, period, scorer))
    return due


def _scoring_list(ctx: Context) -> Reply:
    due = _scoring_due(ctx)
    if not due:
        return Reply("目前没有待您评分的党员。", mention_sender=True)
    lines = ["### 待评分"]
    for item in due:
        lines.append(f"**{item.branch.name} {month_label(item.period)}**")
        lines.extend(f"- {p.name}：自评 {fmt(m.self_total)} 分" for p, m in item.ready)
        lines.extend(f"- {p.name}：未自评" for p in item.not_self_evaluated)
    lines.append(f"评分：{SCORE_USAGE}；按自评分评定：/采纳自评；查看某人：/评分 姓名")
    return Reply("\n".join(lines), title="待评分", markdown=True, mention_sender=True)


@router.command("采纳自评", summary="按自评分一次评定已自评的党员（书记）",
                usage="/采纳自评 [支部] [上月|2026-11]", roles=LEADERS)
def accept(ctx: Context) -> Reply:
    """Score every self-evaluated member of the branch as they self-scored."""
    period, words = _take_period(ctx, ctx.args)
    branch = _branch(ctx, words, "采纳自评")
    period = period or _evaluated_month(ctx, branch)
    outcome = accept_self_scores(session=ctx.session, secretary=ctx.person, branch=branch,
                                 period=period, now=ctx.now)
    names = {p.id: p.name for p in branch_members(session=ctx.session, branch=branch)}
    accepted = "、".join(names.get(m.person_id, "?") for m in outcome.accepted)
    lines = [f"{branch.name} {month_label(period)}：已采纳 {len(outcome.accepted)} 人的自评分"
             + (f"（{accepted}）。" if accepted else "。")]
    if outcome.skipped:
        lines.append("未采纳：" + "；".join(f"{name}（{why}）" for name, why in outcome.skipped))
    scorer = (Capacity.secretary
              if is_branch_secretary(session=ctx.session, person=ctx.person, branch=branch)
              else Capacity.committee)
    waiting = [p.name for item in _due_in(ctx, branch, period, scorer)
               for p in item.not_self_evaluated]
    if waiting:
        lines.append(f"尚未自评 {len(waiting)} 人（{'、'.join(waiting)}），自评截止后请逐个评分："
                     f"{SCORE_USAGE}")
    lines.append(f"详情：{branch_evaluation_url(ctx.settings, branch.id or 0, period)}")
    return Reply("\n".join(lines), title="采纳自评", mention_sender=True)


# ------------------------------------------------------------------ 公示 and 异议


@router.command("公示", summary="审定并公示支部月度评价（党委）",
                usage="/公示 [支部] [上月|2026-11]", roles=LEADERS)
def publish(ctx: Context) -> Reply:
    """Publish a branch's month: the group post and each member's result go out."""
    period, words = _take_period(ctx, ctx.args)
    branch = _branch(ctx, words, "公示")
    period = period or _evaluated_month(ctx, branch)
    url = branch_evaluation_url(ctx.settings, branch.id or 0, period)
    published = publish_branch_month(session=ctx.session, committee_actor=ctx.person,
                                     branch=branch, period=period, now=ctx.now,
                                     tz=ctx.settings.tz, details_url=url)
    deadline = published.branch_month.objection_deadline
    assert deadline is not None
    groups = (f"公示已发到 {published.groups_queued} 个支部群" if published.groups_queued
              else "本支部没有绑定群，未发群公告")
    return Reply(f"已公示{branch.name}{month_label(period)}月度评价（{len(published.months)} 人），"
                 f"异议期至 {when_text(deadline, ctx.settings.tz)}。{groups}，"
                 f"每位党员的结果已私信发送。\n详情：{url}", title="月度评价公示",
                 mention_sender=True)


def _objection_month(ctx: Context) -> str:
    """The member's latest published month (or one whose objection is being answered)."""
    latest = ctx.session.exec(
        select(MemberMonth.period)
        .where(MemberMonth.person_id == ctx.person.id,
               col(MemberMonth.state).in_([MonthState.published, MonthState.objected]))
        .order_by(col(MemberMonth.period).desc())
    ).first()
    return latest or _evaluated_month(ctx, branch_of(ctx.session, ctx.person))


def _answerers(session: Session, branch: Organization, objector: Person) -> list[Person]:
    """The branch's secretaries, unless the objection is their own (the committee answers)."""
    return [p for p in session.exec(
        select(Person)
        .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
        .where(RoleAssignment.role == Role.branch_secretary,
               RoleAssignment.organization_id == branch.id)
    ).all() if p.id != objector.id]


@router.command("异议", summary="对本人公示的月度评价提出异议", usage="/异议 [2026-11] 理由")
def objection(ctx: Context) -> Reply:
    """Object to one's own published month; the branch secretary is told at once."""
    words = list(ctx.args)
    period = _period_word(ctx, words[0]) if words else None
    reason = " ".join(words[1:] if period else words)
    if not reason:
        raise UserError("请写明异议理由，例如：/异议 学习心得已按时提交，但未计分")
    period = period or _objection_month(ctx)
    raised = raise_objection(session=ctx.session, member=ctx.person, period=period, reason=reason,
                             now=ctx.now, tz=ctx.settings.tz)
    notice = Notice(f"{ctx.person.name}对{month_label(period)}月度评价提出异议（Y{raised.id}）："
                    f"{raised.reason}\n答复请发送：/答复异议 Y{raised.id} 维持 说明，"
                    f"或 /答复异议 Y{raised.id} 更正 指标 分值 说明", title="月度评价异议")
    # Queued in this transaction: no message about an objection that did not commit.
    told = sum(send_to_person(session=ctx.session, person=p, kind=OBJECTION_RAISED_KIND,
                              key=f"objection-{raised.id}", notice=notice)
               for p in _answerers(ctx.session, branch_of(ctx.session, ctx.person), ctx.person))
    who = "支部书记" if told else "党委"
    return Reply(f"已提交异议 Y{raised.id}，{who}将尽快答复，结果会私信通知您。",
                 title="月度评价异议", mention_sender=True)


def _objection_number(word: str) -> int:
    number = record_id(word.upper().removeprefix("Y"))
    if number is None:
        raise UserError(f"看不懂编号“{word}”，应为 Y3 这样的异议编号。")
    return number


def _correction(ctx: Context, found: Objection, words: list[str]
                ) -> tuple[Decimal, str, list[str]]:
    """(points, indicator code, the answer's words) from `指标 分值 说明`, in either order."""
    month = ctx.session.get(MemberMonth, found.member_month_id)
    assert month is not None
    branch = ctx.session.get(Organization, month.branch_id)
    assert branch is not None
    url = branch_evaluation_url(ctx.settings, branch.id or 0, month.period)
    if len(words) < 2 or not (_NUMBER.match(words[0]) or _NUMBER.match(words[1])):
        raise UserError(f"更正时请写明指标和分值：{ANSWER_USAGE}，例如 /答复异议 Y{found.id} "
                        f"更正 学习心得 2 心得已按时提交。也可在网页上答复：{url}")
    number, named = (words[0], words[1]) if _NUMBER.match(words[0]) else (words[1], words[0])
    scheme = scheme_for(session=ctx.session, org=branch, period=month.period)
    indicators = _pick(named, ((i.code, i.name, i) for i in scheme.indicators))
    if len(indicators) != 1:
        some = "、".join(i.name for i in indicators[:8])
        hint = f"对应多个指标：{some}，请写得更完整" if indicators else "不是方案中的指标"
        raise UserError(f"“{named}”{hint}。也可在网页上答复：{url}")
    return _points(number), indicators[0].code, words[2:]


@router.command("答复异议", summary="答复党员的异议（书记或党委）", usage=ANSWER_USAGE,
                roles=LEADERS)
def answer(ctx: Context) -> Reply:
    """Dismiss (维持) or uphold (更正) an objection; upheld adds a correcting entry."""
    if len(ctx.args) < 2 or ctx.args[1] not in ("维持", "更正"):
        raise UserError(f"请按格式发送：{ANSWER_USAGE}，例如 /答复异议 Y3 维持 经核实评分无误。"
                        "发送 /待办 查看待答复的异议。")
    number = _objection_number(ctx.args[0])
    found = ctx.session.get(Objection, number)
    if found is None:
        raise UserError(f"找不到异议 Y{number}")
    uphold = ctx.args[1] == "更正"
    points, code, words = (_correction(ctx, found, ctx.args[2:]) if uphold
                           else (None, None, ctx.args[2:]))
    answered = answer_objection(session=ctx.session, actor=ctx.person, objection_id=number,
                                uphold=uphold, answer=" ".join(words),
                                correction_points=points, indicator_code=code, now=ctx.now)
    member = ctx.session.get(Person, answered.raised_by_id)
    verdict = f"已更正 {fmt(points)} 分" if uphold else "维持原评分"
    return Reply(f"已答复异议 Y{number}（{member.name if member else '?'}）：{verdict}。"
                 "答复已私信告知本人。", title="异议答复", mention_sender=True)


# ------------------------------------------------------------------ 评议进度 and 待办


def _progress_line(ctx: Context, row: BranchProgress, period: str) -> str:
    line = (f"- {row.branch_name}（{row.phase.label}）：自评 {row.self_evaluated}/{row.members}"
            f"（逾期 {row.late}），已评分 {row.scored}/{row.members}，已公示 {row.published}，"
            f"异议待答复 {row.objections_open}")
    if row.objection_deadline is not None and row.phase is BranchPhase.publicity:
        line += f"，异议期至 {when_text(row.objection_deadline, ctx.settings.tz)}"
    return f"{line} [详情]({branch_evaluation_url(ctx.settings, row.branch_id, period)})"


@router.command("评议进度", summary="查看支部月度评价进度（书记、党委）",
                usage="/评议进度 [支部] [上月|2026-11]", roles=LEADERS)
def progress(ctx: Context) -> Reply:
    """Self-evaluated x/y, scored, published and open objections of the person's branches."""
    period, words = _take_period(ctx, ctx.args)
    if words:
        branch = _named_branch(ctx, " ".join(words))
        if not _may_act_on(ctx, branch):
            raise UserError(f"只能查看您负责的支部，{branch.name}不在其中。")
        tops = [branch]
    else:
        tops = _committee_orgs(ctx) or _own_branches(ctx)
    if not tops:
        raise UserError("您目前没有负责的支部。")
    lines: list[str] = []
    for top in tops:
        month = period or _evaluated_month(ctx, top)
        rows = [r for r in evaluation_status(session=ctx.session, org=top, period=month)
                if r.members]
        lines.append(f"### {top.name} {month_label(month)}月度评价进度")
        lines.extend(_progress_line(ctx, row, month) for row in rows)
    return Reply("\n".join(lines), title="评议进度", markdown=True, mention_sender=True)


def _open_objections(ctx: Context) -> list[tuple[Objection, Person, Organization]]:
    """Open objections the person may answer (never their own), oldest first."""
    rows = ctx.session.exec(
        select(Objection, Person, Organization)
        .join(MemberMonth, col(MemberMonth.id) == Objection.member_month_id)
        .join(Person, col(Person.id) == Objection.raised_by_id)
        .join(Organization, col(Organization.id) == MemberMonth.branch_id)
        .where(Objection.status == ObjectionStatus.OPEN,
               Objection.raised_by_id != ctx.person.id)
        .order_by(col(Objection.id))
    ).all()
    return [(o, p, b) for o, p, b in rows if _may_act_on(ctx, b)]


def todo_lines(ctx: Context) -> list[str]:
    """The evaluation's part of /待办: scoring still to do and objections to answer."""
    lines: list[str] = []
    for item in _scoring_due(ctx):
        where = f"{item.branch.name} {month_label(item.period)}"
        if item.scorer is Capacity.committee:
            people = "、".join([*(f"{p.name}（已自评）" for p, _ in item.ready),
                               *(f"{p.name}（未自评）" for p in item.not_self_evaluated)])
            lines.append(f"- 支部书记月度评分（{where}）：{people}。评分：{SCORE_USAGE}")
            continue
        counts = "，".join(f"{label} {len(people)} 人" for label, people in (
            ("已自评待评分", item.ready), ("未自评", item.not_self_evaluated)) if people)
        lines.append(f"- 月度评分（{where}）：{counts}。按自评分评定：/采纳自评；"
                     f"逐个评分：{SCORE_USAGE}；名单：/评分")
    for found, member, branch in _open_objections(ctx):
        lines.append(f"- 异议 Y{found.id}：{member.name}（{branch.name}），{found.reason}。"
                     f"答复：/答复异议 Y{found.id} 维持|更正 …")
    return lines
