"""Monthly evaluation rules, pure: the member-month state machine, the self-evaluation window,
reasons for departing scores, self adjustments, assessment units, the spot-check draw."""

import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.domain.assessment import (
    Basis,
    dimension_scores,
    limits,
    plan_dimensions,
    plan_total,
    points_before_veto,
)
from app.domain.evaluation import (
    Action,
    BranchPhase,
    Capacity,
    EvaluationRefused,
    Limit,
    MonthState,
    adjusted_scores,
    branch_phase,
    draw_sample,
    next_state,
    objection_deadline,
    require_reason,
    require_self_evaluation_over,
    score_gap,
    self_evaluation_late,
    self_window,
)
from app.domain.refusals import Refusal
from app.domain.scheme import (
    EvaluationRules,
    Scheme,
    SchemeError,
    diff_schemes,
    load_preset,
    load_scheme,
    preset_text,
)
from app.domain.scoring import EntryFact

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
XINLUO = load_preset("xinluo")
CHINESE = re.compile(r"[\u4e00-\u9fff]")
S = MonthState

LEGAL = {
    (Action.confirm, S.open): S.self_evaluated,
    (Action.score, S.open): S.scored,
    (Action.score, S.self_evaluated): S.scored,
    (Action.score, S.scored): S.scored,
    (Action.accept, S.self_evaluated): S.scored,
    (Action.publish, S.scored): S.published,
    (Action.object, S.published): S.objected,
    (Action.answer, S.objected): S.published,
    (Action.close, S.published): S.closed,
}
# A capacity allowed to take each action (for the secretary-scored member).
ALLOWED = {
    Action.confirm: Capacity.member,
    Action.score: Capacity.secretary,
    Action.accept: Capacity.secretary,
    Action.publish: Capacity.committee,
    Action.object: Capacity.member,
    Action.answer: Capacity.secretary,
    Action.close: Capacity.system,
}


def refused(match: str | None = None) -> pytest.RaisesExc[EvaluationRefused]:
    return pytest.raises(EvaluationRefused, match=match)


@pytest.mark.parametrize(("move", "to"), LEGAL.items())
def test_legal_moves(move: tuple[Action, MonthState], to: MonthState) -> None:
    action, state = move
    assert next_state(state, action, ALLOWED[action]) is to


@pytest.mark.parametrize(
    ("action", "state"),
    [(a, s) for a in Action for s in MonthState if (a, s) not in LEGAL],
)
def test_every_illegal_move_is_refused_in_chinese(action: Action, state: MonthState) -> None:
    with refused() as caught:
        next_state(state, action, ALLOWED[action])
    assert CHINESE.search(str(caught.value)), str(caught.value)
    assert caught.value.kind is Refusal.conflict  # not now: the month is in the wrong state


@pytest.mark.parametrize(
    ("state", "action", "message"),
    [
        (S.self_evaluated, Action.confirm, "本月自评已确认，不能重复确认"),
        (S.scored, Action.confirm, "书记已评分，不能再修改自评"),
        (S.published, Action.score, "本月评价已公示，不能再改分"),
        (S.open, Action.accept, "尚未确认自评"),
        (S.self_evaluated, Action.publish, "还有党员尚未评分"),
        (S.scored, Action.object, "尚未公示"),
        (S.objected, Action.object, "异议正在处理中"),
        (S.published, Action.answer, "没有待答复的异议"),
        (S.objected, Action.close, "还有未答复的异议"),
        (S.closed, Action.close, "本月已结账"),
    ],
)
def test_wrong_state_messages(state: MonthState, action: Action, message: str) -> None:
    with refused(message):
        next_state(state, action, ALLOWED[action])


@pytest.mark.parametrize(
    ("action", "capacity", "scorer", "message"),
    [
        (Action.confirm, Capacity.secretary, Capacity.secretary, "只能由党员本人确认自评"),
        (Action.score, Capacity.member, Capacity.secretary, "不能给自己评分"),
        (Action.score, Capacity.member, Capacity.committee, "不能给自己评分"),
        (Action.score, Capacity.outsider, Capacity.secretary, "只能给本支部党员评分"),
        (Action.score, Capacity.committee, Capacity.secretary, "党员的月度评分由本支部书记评定"),
        (Action.accept, Capacity.secretary, Capacity.committee, "支部书记的月度评分由党委评定"),
        (Action.publish, Capacity.secretary, Capacity.secretary, "只有党委可以审定公示"),
        (Action.object, Capacity.secretary, Capacity.secretary, "只能由党员本人对月度评价"),
        (Action.answer, Capacity.member, Capacity.secretary, "不能答复自己提出的异议"),
        (Action.answer, Capacity.outsider, Capacity.secretary, "只能答复本支部党员的异议"),
        (Action.close, Capacity.secretary, Capacity.secretary, "只有党委可以结账"),
    ],
)
def test_who_may_act_is_checked_before_the_state(
    action: Action, capacity: Capacity, scorer: Capacity, message: str
) -> None:
    for state in MonthState:
        with refused(message) as caught:
            next_state(state, action, capacity, scorer=scorer)
        assert caught.value.kind is Refusal.forbidden


def test_the_committee_scores_branch_secretaries_and_answers_objections() -> None:
    assert next_state(S.self_evaluated, Action.score, Capacity.committee,
                      scorer=Capacity.committee) is S.scored
    assert next_state(S.objected, Action.answer, Capacity.committee) is S.published
    assert next_state(S.published, Action.close, Capacity.committee) is S.closed


def test_self_window_defaults_and_year_end() -> None:
    rules = EvaluationRules()
    window = self_window("2026-11", rules, SHANGHAI)
    assert window.opens_at == datetime(2026, 11, 25, tzinfo=SHANGHAI)
    assert window.deadline_at == datetime(2026, 12, 6, tzinfo=SHANGHAI)
    assert window.last_day == date(2026, 12, 5)
    december = self_window("2026-12", rules.model_copy(update={"deadline_day": 3}), SHANGHAI)
    assert december.deadline_at == datetime(2027, 1, 4, tzinfo=SHANGHAI)


def test_lateness_and_opening() -> None:
    window = self_window("2026-11", EvaluationRules(), SHANGHAI)
    with refused("11月的自评将于11月25日开放"):
        self_evaluation_late(window, window.opens_at - timedelta(seconds=1))
    assert self_evaluation_late(window, window.opens_at) is False
    assert self_evaluation_late(window, window.deadline_at - timedelta(seconds=1)) is False
    assert self_evaluation_late(window, window.deadline_at.astimezone(UTC)) is True
    with refused("自评截止日为12月5日"):
        require_self_evaluation_over(window, window.deadline_at - timedelta(minutes=1))
    require_self_evaluation_over(window, window.deadline_at)


def test_objection_deadline() -> None:
    published = datetime(2026, 12, 8, 2, tzinfo=UTC)
    assert objection_deadline(published, 3) == datetime(2026, 12, 11, 2, tzinfo=UTC)
    with refused("至少为 1 天"):
        objection_deadline(published, 0)


def test_a_score_beyond_the_margin_needs_a_reason() -> None:
    rules = EvaluationRules()
    own = {"a": D(10), "b": D(5)}
    assert score_gap(own, {"a": D(12), "b": D(5)}, D(15), D(17)) == 2
    require_reason(D(2), "", rules)
    assert score_gap(own, {"a": D(12), "b": D("2.5")}, D(15), D("14.5")) == D("2.5")
    with refused("相差 2.5 分，超过 2 分，请填写理由"):
        require_reason(D("2.5"), "  ", rules)
    require_reason(D("2.5"), "工作表现突出", rules)
    with refused("超过 0.5 分"):
        require_reason(D(1), "", rules.model_copy(update={"score_margin": D("0.5")}))
    # Moving points between dimensions at the same total is a departure too.
    assert score_gap(own, {"a": D(5), "b": D(10)}, D(15), D(15)) == 5


def test_self_adjustments_are_clamped_within_the_limits() -> None:
    ledger = {"a": D(3), "b": D(6), "c": D(0)}
    bounds = {"a": Limit(D(3), D(13)), "b": Limit(D(6), D(6)), "c": Limit(D(0), D(10))}
    wanted = {"a": D(20), "b": D(4), "c": D(-5)}
    assert adjusted_scores(ledger, wanted, bounds) == {"a": D(13), "b": D(6), "c": D(0)}
    assert adjusted_scores(ledger, {}, bounds) == ledger
    with refused("方案中没有维度“zz”"):
        adjusted_scores(ledger, {"zz": D(1)}, bounds)


def test_the_spot_check_draw_is_reproducible() -> None:
    ids = list(range(100, 160))
    first = draw_sample(ids, seed=2026, size=5)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    assert draw_sample(shuffled, seed=2026, size=5) == first
    assert first == random.Random(2026).sample(sorted(ids), 5)
    assert draw_sample(ids, seed=2027, size=5) != first
    assert len(draw_sample(ids, seed=1, percent=D(10))) == 6
    assert len(draw_sample(ids[:7], seed=1, percent=D(10))) == 1  # rounded up
    assert sorted(draw_sample(ids[:3], seed=1, size=10)) == ids[:3]
    with refused("二选一"):
        draw_sample(ids, seed=1)
    with refused("二选一"):
        draw_sample(ids, seed=1, size=1, percent=D(5))
    with refused("正整数"):
        draw_sample(ids, seed=1, size=0)
    with refused("不超过 100%"):
        draw_sample(ids, seed=1, percent=D(101))


def test_branch_phase() -> None:
    phase = branch_phase
    assert phase(members=3, self_evaluated=1, scored=0, published=False,
                 closed=False) is BranchPhase.self_evaluation
    assert phase(members=3, self_evaluated=3, scored=0, published=False,
                 closed=False) is BranchPhase.scoring
    assert phase(members=3, self_evaluated=1, scored=1, published=False,
                 closed=False) is BranchPhase.scoring
    assert phase(members=3, self_evaluated=2, scored=3, published=False,
                 closed=False) is BranchPhase.ready
    assert phase(members=3, self_evaluated=2, scored=3, published=True,
                 closed=False) is BranchPhase.publicity
    assert phase(members=3, self_evaluated=2, scored=3, published=True,
                 closed=True) is BranchPhase.closed
    assert BranchPhase.publicity.label == "公示中"


def basis(*facts: tuple[str, int], scheme: Scheme = XINLUO) -> Basis:
    day = date(2026, 11, 30)
    entries = tuple(EntryFact(code, scheme.indicator_by_code[code].points * count, day)
                    for code, count in facts)
    return Basis(scheme, entries, day)


def test_limits_run_from_the_ledger_to_what_the_assessment_item_can_add() -> None:
    month = basis(("online_study", 3), ("attendance_present", 2), ("volunteering", 1))
    assert limits(month) == {
        "political": Limit(D(3), D(13)),  # political_review: 1 point, up to 10
        "discipline": Limit(D(6), D(14)),  # discipline_review: up to 8
        "morality": Limit(D(3), D(18)),  # conduct_review: up to 15
        "role": Limit(D(0), D(10)),  # kpi_completion fills 工作业绩 (10) only
    }


def test_plan_gives_exact_units_and_refuses_what_it_cannot_give() -> None:
    month = basis(("online_study", 3), ("attendance_present", 2))
    plan = plan_dimensions(month, {"political": D(11), "role": D(8), "discipline": D(6)})
    assert plan.units == {"political_review": 8, "kpi_completion": 8}
    assert dimension_scores(plan.score) == {"political": 11, "discipline": 6, "morality": 0,
                                            "role": 8}
    assert plan.score.total == 25
    with refused("政治合格不能低于台账已记的 3 分"):
        plan_dimensions(month, {"political": D(2)})
    with refused("政治合格的综合评分以 1 分为单位"):
        plan_dimensions(month, {"political": D("4.5")})
    with refused("政治合格最多可评 13 分"):
        plan_dimensions(month, {"political": D(14)})
    with refused("发挥作用合格最多可评 10 分"):
        plan_dimensions(month, {"role": D(12)})
    with refused("方案中没有维度“zz”"):
        plan_dimensions(month, {"zz": D(1)})
    no_assessment = XINLUO.model_copy(update={"evaluation": EvaluationRules()})
    with refused("政治合格按台账计分（3 分），不设综合评分"):
        plan_dimensions(basis(("online_study", 3), scheme=no_assessment), {"political": D(4)})


TOTAL_SCHEME = load_scheme(
    preset_text("xinluo").replace(
        "  scoring: dimension\n  assessment:\n    political: political_review\n"
        "    discipline: discipline_review\n    morality: conduct_review\n"
        "    role: kpi_completion\n",
        "  scoring: total\n  assessment:\n    morality: conduct_review\n",
    )
)


def test_total_scoring_goes_through_the_one_assessment_item() -> None:
    month = basis(("online_study", 3), ("attendance_present", 2), scheme=TOTAL_SCHEME)
    plan = plan_total(month, D(20))
    assert plan.units == {"conduct_review": 11}
    assert plan.score.total == 20
    with refused("总分只能评 9–24 分"):
        plan_total(month, D(30))
    vetoed = basis(("online_study", 3), ("veto_law", 1), scheme=TOTAL_SCHEME)
    with refused("一票否决"):
        plan_total(vetoed, D(5))
    assert points_before_veto(vetoed.score()) == 3


def test_scheme_evaluation_section_is_validated() -> None:
    text = preset_text("xinluo")
    bad = text.replace("    political: political_review\n",
                       "    political: online_study\n    nowhere: political_review\n"
                       "    morality: study_notes\n", 1)
    bad = bad.replace("    morality: conduct_review\n", "")
    bad = bad.replace("  on_time: self_evaluation_on_time", "  on_time: political_review\n"
                      "  late: missing_code")
    with pytest.raises(SchemeError) as caught:
        load_scheme(bad)
    problems = {p.path: p.reason for p in caught.value.problems}
    assert problems == {
        "evaluation.assessment.political": "指标“online_study”须为组织评定（assessed）的评分项",
        "evaluation.assessment.nowhere": "“nowhere”不是顶层维度的代码",
        "evaluation.assessment.morality": "指标“study_notes”不属于维度“morality”",
        "evaluation.on_time": "指标“political_review”须为系统自动（automatic）的评分项",
        "evaluation.late": "未知的指标“missing_code”",
    }
    two = text.replace("  scoring: dimension", "  scoring: total")
    with pytest.raises(SchemeError, match="评总分时须恰好指定一个综合评分指标"):
        load_scheme(two)


def test_presets_carry_an_evaluation_section_and_diffs_show_it() -> None:
    for name in ("xinluo", "datang", "jiangzhong"):
        rules = load_preset(name).evaluation
        assert rules.on_time == "self_evaluation_on_time" and rules.assessment
    changed = load_scheme(preset_text("xinluo").replace("  objection_days: 3",
                                                        "  objection_days: 5"))
    assert diff_schemes(XINLUO, changed) == ["月度评价：公示异议期（天） 3 → 5"]
    # A scheme without the section evaluates with the documented defaults.
    bare = load_scheme(preset_text("xinluo").split("\nevaluation:")[0])
    assert bare.evaluation == EvaluationRules()
