"""The monthly evaluation (一月一初评) as pure rules: the member-month state machine, the
self-evaluation window, when a score needs a reason, and the reproducible spot-check draw.

A member's month moves open → self_evaluated → scored → published → closed. A member may skip
the self-evaluation (the secretary then scores from `open` once the deadline has passed), the
secretary may score again until publication, and during publication an objection moves the
month to `objected` until it is answered. Every move goes through `next_state`, which refuses
anything else with the message the user reads.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.domain.periods import next_month, parse_month
from app.domain.refusals import Refusal, Refused
from app.domain.scheme import EvaluationRules
from app.domain.vocab import Labelled


class EvaluationRefused(Refused):
    """An evaluation step was refused; the message is for the user, in Chinese."""


class MonthState(Labelled):
    """Where a member's month stands."""

    open = "open"
    self_evaluated = "self_evaluated"
    scored = "scored"
    published = "published"
    objected = "objected"
    closed = "closed"


MonthState._labels = {
    "open": "待自评",
    "self_evaluated": "已自评",
    "scored": "已评分",
    "published": "公示中",
    "objected": "异议处理中",
    "closed": "已结账",
}


class Action(Labelled):
    """What someone does to a member's month."""

    confirm = "confirm"
    score = "score"
    accept = "accept"
    publish = "publish"
    object = "object"
    answer = "answer"
    close = "close"


Action._labels = {
    "confirm": "确认自评",
    "score": "综合评分",
    "accept": "采纳自评分",
    "publish": "审定公示",
    "object": "提出异议",
    "answer": "答复异议",
    "close": "结账",
}


class Capacity(Labelled):
    """In what capacity someone acts on a member's month."""

    member = "member"
    secretary = "secretary"
    committee = "committee"
    system = "system"
    outsider = "outsider"


Capacity._labels = {
    "member": "本人",
    "secretary": "支部书记",
    "committee": "党委",
    "system": "系统",
    "outsider": "其他人员",
}

_S = MonthState
# (action, state the month is in) → the state it moves to; anything missing is refused.
_MOVES: dict[tuple[Action, MonthState], MonthState] = {
    (Action.confirm, _S.open): _S.self_evaluated,
    (Action.score, _S.open): _S.scored,
    (Action.score, _S.self_evaluated): _S.scored,
    (Action.score, _S.scored): _S.scored,
    (Action.accept, _S.self_evaluated): _S.scored,
    (Action.publish, _S.scored): _S.published,
    (Action.object, _S.published): _S.objected,
    (Action.answer, _S.objected): _S.published,
    (Action.close, _S.published): _S.closed,
}

_PUBLISHED = "本月评价已公示"
_CLOSED = "本月已结账"
# Why an action is refused in a state it cannot be taken in, by action then state.
_WRONG_STATE: dict[Action, dict[MonthState, str]] = {
    Action.confirm: {
        _S.self_evaluated: "本月自评已确认，不能重复确认",
        _S.scored: "书记已评分，不能再修改自评",
        _S.published: f"{_PUBLISHED}，不能再修改自评",
        _S.objected: f"{_PUBLISHED}，不能再修改自评",
        _S.closed: f"{_CLOSED}，不能再修改自评",
    },
    Action.score: {
        _S.published: f"{_PUBLISHED}，不能再改分；如有异议请走异议程序",
        _S.objected: f"{_PUBLISHED}，不能再改分；请答复异议并记更正",
        _S.closed: f"{_CLOSED}，不能再评分",
    },
    Action.accept: {
        _S.open: "该党员尚未确认自评，无法采纳自评分",
        _S.scored: "该党员本月已评分",
        _S.published: f"{_PUBLISHED}，不能再改分",
        _S.objected: f"{_PUBLISHED}，不能再改分",
        _S.closed: f"{_CLOSED}，不能再评分",
    },
    Action.publish: {
        _S.open: "还有党员尚未评分，不能公示",
        _S.self_evaluated: "还有党员尚未评分，不能公示",
        _S.published: f"{_PUBLISHED}，无需重复公示",
        _S.objected: f"{_PUBLISHED}，无需重复公示",
        _S.closed: _CLOSED,
    },
    Action.object: {
        _S.open: "本月评价尚未公示，暂不能提出异议",
        _S.self_evaluated: "本月评价尚未公示，暂不能提出异议",
        _S.scored: "本月评价尚未公示，暂不能提出异议",
        _S.objected: "您的异议正在处理中，请等待答复",
        _S.closed: f"{_CLOSED}，异议期已过",
    },
    Action.answer: {
        state: "没有待答复的异议" for state in MonthState if state is not _S.objected
    },
    Action.close: {
        _S.open: "本月评价尚未公示，不能结账",
        _S.self_evaluated: "本月评价尚未公示，不能结账",
        _S.scored: "本月评价尚未公示，不能结账",
        _S.objected: "还有未答复的异议，不能结账",
        _S.closed: f"{_CLOSED}，无需重复结账",
    },
}

_SCORERS = (Action.score, Action.accept)


def _refuse_capacity(action: Action, capacity: Capacity, scorer: Capacity) -> None:
    if action in (Action.confirm, Action.object):
        if capacity is not Capacity.member:
            verb = "确认自评" if action is Action.confirm else "对月度评价提出异议"
            raise EvaluationRefused(f"只能由党员本人{verb}", kind=Refusal.forbidden)
    elif action in _SCORERS:
        if capacity is Capacity.member:
            raise EvaluationRefused("不能给自己评分", kind=Refusal.forbidden)
        if capacity is not scorer:
            if scorer is Capacity.committee and capacity is Capacity.secretary:
                raise EvaluationRefused("支部书记的月度评分由党委评定", kind=Refusal.forbidden)
            if scorer is Capacity.secretary and capacity is Capacity.committee:
                raise EvaluationRefused("党员的月度评分由本支部书记评定", kind=Refusal.forbidden)
            raise EvaluationRefused("只能给本支部党员评分", kind=Refusal.forbidden)
    elif action is Action.answer:
        if capacity is Capacity.member:
            raise EvaluationRefused("不能答复自己提出的异议", kind=Refusal.forbidden)
        if capacity not in (Capacity.secretary, Capacity.committee):
            raise EvaluationRefused("只能答复本支部党员的异议", kind=Refusal.forbidden)
    elif action is Action.publish:
        if capacity is not Capacity.committee:
            raise EvaluationRefused("只有党委可以审定公示月度评价", kind=Refusal.forbidden)
    elif capacity not in (Capacity.committee, Capacity.system):
        raise EvaluationRefused("只有党委可以结账", kind=Refusal.forbidden)


def next_state(
    state: MonthState, action: Action, capacity: Capacity, *,
    scorer: Capacity = Capacity.secretary,
) -> MonthState:
    """The state `action` moves a month to, or EvaluationRefused (who may act is checked first)."""
    # `scorer` is whoever scores this member: the branch secretary for a member, the committee
    # for a branch secretary (党委书记对支部书记测评).
    _refuse_capacity(action, capacity, scorer)
    moved = _MOVES.get((action, state))
    if moved is None:
        raise EvaluationRefused(_WRONG_STATE[action][state], kind=Refusal.conflict)
    return moved


@dataclass(frozen=True)
class SelfWindow:
    """When the self-evaluation of a month opens and when it is due (both aware instants)."""

    opens_at: datetime
    deadline_at: datetime

    @property
    def last_day(self) -> date:
        """The local date of the deadline day, as members are told it."""
        return (self.deadline_at - timedelta(microseconds=1)).date()


def self_window(period: str, rules: EvaluationRules, tz: ZoneInfo) -> SelfWindow:
    """From `opens_day` of the month to the end of `deadline_day` of the next month, local."""
    year, month = parse_month(period)
    next_year, following = parse_month(next_month(period))
    opens = datetime.combine(date(year, month, rules.opens_day), time(0), tzinfo=tz)
    due = date(next_year, following, rules.deadline_day) + timedelta(days=1)
    return SelfWindow(opens, datetime.combine(due, time(0), tzinfo=tz))


def self_evaluation_late(window: SelfWindow, now: datetime) -> bool:
    """Whether a confirmation at `now` is late; refused before the window opens."""
    if now < window.opens_at:
        opens = window.opens_at
        raise EvaluationRefused(f"{opens.month}月的自评将于{opens.month}月{opens.day}日开放")
    return now >= window.deadline_at


def require_self_evaluation_over(window: SelfWindow, now: datetime) -> None:
    """A month nobody self-evaluated may be scored only once the self-evaluation is due."""
    if now < window.deadline_at:
        day = window.last_day
        raise EvaluationRefused(
            f"该党员尚未自评，自评截止日为{day.month}月{day.day}日，请等待自评或截止后再评分"
        )


def objection_deadline(published_at: datetime, days: int) -> datetime:
    """When the objection window of a publication ends."""
    if days < 1:
        raise EvaluationRefused("异议期至少为 1 天")
    return published_at + timedelta(days=days)


def score_gap(
    self_scores: Mapping[str, Decimal], assessed: Mapping[str, Decimal],
    self_total: Decimal | None, assessed_total: Decimal | None,
) -> Decimal:
    """The largest difference between the self and the assessed score, per dimension or total."""
    gaps = [abs(assessed[code] - self_scores[code]) for code in assessed if code in self_scores]
    if self_total is not None and assessed_total is not None:
        gaps.append(abs(assessed_total - self_total))
    return max(gaps, default=Decimal(0))


def require_reason(gap: Decimal, reason: str, rules: EvaluationRules) -> None:
    """A score further than the margin from the self score must say why."""
    if gap > rules.score_margin and not reason.strip():
        raise EvaluationRefused(
            f"评分与自评相差 {gap.normalize():f} 分，超过 {rules.score_margin.normalize():f} 分，"
            "请填写理由"
        )


@dataclass(frozen=True)
class Limit:
    """How far a dimension's month score can go: the ledger's score up to what the assessment
    indicator can still add."""

    low: Decimal
    high: Decimal


def adjusted_scores(
    ledger: Mapping[str, Decimal], adjustments: Mapping[str, Decimal],
    limits: Mapping[str, Limit],
) -> dict[str, Decimal]:
    """The member's self scores: the ledger's plus their adjustments, kept within the limits."""
    unknown = sorted(set(adjustments) - set(ledger))
    if unknown:
        raise EvaluationRefused(f"方案中没有维度“{'、'.join(unknown)}”")
    return {
        code: max(limits[code].low, min(limits[code].high, score + adjustments.get(code, 0)))
        for code, score in ledger.items()
    }


def draw_sample(
    ids: Sequence[int], *, seed: int, size: int | None = None, percent: Decimal | None = None,
) -> list[int]:
    """A reproducible random sample of `ids`: the same ids, seed and size give the same draw."""
    if (size is None) == (percent is None):
        raise EvaluationRefused("请指定抽查数量或抽查比例（二选一）")
    if size is not None and size < 1:
        raise EvaluationRefused("抽查数量须为正整数")
    if percent is not None and not Decimal(0) < percent <= Decimal(100):
        raise EvaluationRefused("抽查比例须大于 0%、不超过 100%")
    population = sorted(set(ids))
    if percent is not None:
        size = math.ceil(len(population) * percent / 100)
    assert size is not None
    return random.Random(seed).sample(population, min(size, len(population)))


class BranchPhase(Labelled):
    """Where a branch's month stands, for progress reports."""

    self_evaluation = "self_evaluation"
    scoring = "scoring"
    ready = "ready"
    publicity = "publicity"
    closed = "closed"


BranchPhase._labels = {
    "self_evaluation": "自评中",
    "scoring": "评分中",
    "ready": "待公示",
    "publicity": "公示中",
    "closed": "已结账",
}


def branch_phase(
    *, members: int, self_evaluated: int, scored: int, published: bool, closed: bool
) -> BranchPhase:
    """The phase a branch's month is in, from its counts."""
    if closed:
        return BranchPhase.closed
    if published:
        return BranchPhase.publicity
    if members and scored == members:
        return BranchPhase.ready
    if scored or (members and self_evaluated == members):
        return BranchPhase.scoring
    return BranchPhase.self_evaluation
