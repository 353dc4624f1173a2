"""Month close: score every member of a subtree in one set-based statement and freeze it.

The rule of record is `app.domain.scoring.score_month`; this module computes the same numbers in
SQL, and `tests/test_month_close.py` checks that the two agree on random ledgers, on both
databases.

What it costs, by `benchmarks/month_close.py` on a 2-CPU machine: closing 100,000 members with
3M entries takes about 7.7 s on PostgreSQL 15, some 11 times one plain aggregate over the same
entries (0.7 s); on SQLite, 10,000 members with 300k entries take 0.7 s, also about 11 times.
Much of that is not scoring: on PostgreSQL, inserting the 100,000 result rows with their foreign
key checks takes 1.7 s by itself, and summing the entries per member and indicator (which the
caps need) 1.9 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, func, select

from app.domain.periods import parse_month
from app.domain.refusals import Refused
from app.domain.scheme import Baseline, DeductionMode, IndicatorKind, Scheme, VetoEffect
from app.domain.vocab import MemberType, OrgKind
from app.models import LedgerEntry, Organization, PeriodClose
from app.services import audit, schemes
from app.services.ledger import APPROVED_SQL, closed_period_owner, pending_clause


class MonthCloseError(Refused):
    """The month cannot be closed; the message is for the user, in Chinese."""


@dataclass(frozen=True)
class CloseOutcome:
    """What a close did: the frozen close row, whether this call made it, what it left out."""

    close: PeriodClose
    created: bool
    pending_not_counted: int


MEMBERS_SQL = f"""
SELECT p.id AS person_id,
       CASE WHEN o.kind = '{OrgKind.group.value}' THEN o.parent_id ELSE o.id END AS branch_id
FROM person p JOIN organization o ON o.id = p.organization_id
WHERE o.path LIKE :subtree AND p.active AND p.member_type <> '{MemberType.masses.value}'
  -- A member already frozen by a closer subtree's close keeps that result.
  AND NOT EXISTS (SELECT 1 FROM month_result r WHERE r.period = :period AND r.person_id = p.id)
"""


# Planner settings for the close's statements on PostgreSQL. The planner cannot know how many
# (member, indicator) pairs a month has (on the benchmark it expects 0.3M of 1.8M, and 200
# members of 100,000), so left alone it hashes both aggregates in work_mem-sized batches and
# spills about 250 MB to disk. Aggregating by sorting reads the entries in member order off the
# person index (the first aggregate then sorts only within each member) and spills only the sort
# of the lines in between: 15-20% off the close. JIT: once the estimated cost passes
# jit_optimize_above_cost, compiling takes about a second, more than it saves.
PG_CLOSE_SETTINGS = {"enable_hashagg": "off", "jit": "off"}


def close_month(
    *, session: Session, org: Organization, period: str, actor_label: str
) -> CloseOutcome:
    """Freeze `period` for `org`'s subtree; closing a closed month again changes nothing."""
    parse_month(period)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Entries recorded while the close runs wait for it, then find the month closed.
        session.execute(text("LOCK TABLE ledger_entry, entry_review IN SHARE MODE"))
    existing = session.exec(
        select(PeriodClose).where(
            PeriodClose.organization_id == org.id, PeriodClose.period == period
        )
    ).first()
    if existing is not None:
        return CloseOutcome(existing, created=False, pending_not_counted=0)
    if closed_period_owner(session=session, org=org, period=period) is not None:
        raise MonthCloseError(f"{period} 已由上级组织结账")
    version = schemes.version_for(session=session, org=org, period=period)
    if version is None:
        raise MonthCloseError(f"{period} 没有生效的积分方案，无法结账")
    _require_earlier_months_closed(session, org, period)
    subtree = f"{org.path}%"
    members = session.execute(
        text(f"SELECT COUNT(*) FROM ({MEMBERS_SQL}) m"), {"subtree": subtree, "period": period}
    ).scalar_one()
    close = PeriodClose(organization_id=org.id, period=period, scheme_version_id=version.id,
                        members=members, closed_by=actor_label)
    session.add(close)
    session.flush()
    sql = ScoringSql(schemes.scheme_of(version), dialect=dialect)
    # Year totals first: once results exist, the members CTE no longer selects these members.
    statements = [sql.insert_year_totals()] if sql.yearly_capped else []
    statements.append(sql.insert_results())
    params = {"period": period, "subtree": subtree, "close_id": close.id,
              "year_start": f"{period[:4]}-01", **sql.params}
    settings = PG_CLOSE_SETTINGS if dialect == "postgresql" else {}
    _execute_with_settings(session, statements, params, settings)
    pending = _count_pending(session, subtree, period)
    audit.record(session=session, actor_label=actor_label, action="close", entity="period",
                 entity_id=close.id,
                 after={"organization_id": org.id, "period": period, "members": members,
                        "scheme_version_id": version.id, "pending_not_counted": pending})
    return CloseOutcome(close, created=True, pending_not_counted=pending)


def _execute_with_settings(session: Session, statements: list[str], params: dict[str, Any],
                           settings: dict[str, str]) -> None:
    """Run `statements` with planner `settings`; the transaction's own values come back after."""
    saved = {name: session.execute(text("SELECT current_setting(:name)"), {"name": name})
             .scalar_one() for name in settings}
    set_local = text("SELECT set_config(:name, :value, true)")
    for name, value in settings.items():
        session.execute(set_local, {"name": name, "value": value})
    for statement in statements:
        session.execute(text(statement), params)
    # Not in a `finally`: after an error the transaction is aborted, and rolling it back
    # undoes these settings with everything else.
    for name, value in saved.items():
        session.execute(set_local, {"name": name, "value": value})


def _require_earlier_months_closed(session: Session, org: Organization, period: str) -> None:
    # Yearly caps carry counted points from month to month, so months close in order.
    earlier = session.exec(
        select(LedgerEntry.period)
        .join(Organization, col(Organization.id) == LedgerEntry.organization_id)
        .where(
            col(Organization.path).startswith(org.path),
            LedgerEntry.period >= f"{period[:4]}-01",
            LedgerEntry.period < period,
        )
        .distinct()
        .order_by(LedgerEntry.period)
    ).all()
    for month in earlier:
        if closed_period_owner(session=session, org=org, period=month) is None:
            raise MonthCloseError(f"请先结账 {month}（同一年度的月份须按顺序结账）")


def _count_pending(session: Session, subtree: str, period: str) -> int:
    return session.exec(
        select(func.count())
        .select_from(LedgerEntry)
        .join(Organization, col(Organization.id) == LedgerEntry.organization_id)
        .where(
            col(Organization.path).like(subtree),
            LedgerEntry.period == period,
            pending_clause(),
        )
    ).one()


class ScoringSql:
    """The month-scoring rule of `score_month`, written as SQL for one scheme.

    Both statements start from `lines`: one row per member and indicator used, with the month's
    approved points summed and limited by the indicator's monthly and yearly caps. The results
    statement then makes ONE pass over the lines per member, with a column per dimension and
    sub-dimension (the scheme is known here, so its shape becomes the query's shape); clamps and
    caps are plain expressions over those columns, and ranks are window functions over the rows
    being inserted. One pass matters: the lines are the largest intermediate result (1.8M rows
    for 100,000 members on the benchmark), and every further GROUP BY or join over them, let
    alone a cross join of members with dimensions, shows in the close's time.
    """

    def __init__(self, scheme: Scheme, *, dialect: str) -> None:
        self.scheme = scheme
        self.pg = dialect == "postgresql"
        self.params: dict[str, Any] = {}
        self.yearly_capped = any(i.cap_per_year is not None for i in scheme.indicators)

    def _param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _num(self, value: Decimal | None) -> str:
        if value is None:
            return "CAST(NULL AS NUMERIC)"
        # Text, since raw drivers do not all bind Decimal; the cast makes it exact again.
        return f"CAST({self._param(str(value))} AS NUMERIC)"

    def _least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.pg else f"MIN({a}, {b})"

    def _greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"MAX({a}, {b})"

    def _clamp(self, expr: str, low: str, high: str) -> str:
        return self._greatest(low, self._least(high, expr))

    def _rules(self) -> str:
        dimension_deductions = self.scheme.period.deductions is DeductionMode.dimension
        rows = []
        for i in self.scheme.indicators:
            # base_dim: the dimension or sub-dimension whose score the indicator's points form.
            forms_score = i.kind is IndicatorKind.score or (
                i.kind is IndicatorKind.deduction and dimension_deductions)
            base_dim = self._param(i.dimension) if forms_score and i.dimension else "NULL"
            rows.append(f"({self._param(i.code)}, {self._param(i.kind.value)}, "
                        f"CAST({base_dim} AS VARCHAR), "
                        f"{self._num(i.cap_per_month)}, {self._num(i.cap_per_year)})")
        return f"rules(code, kind, base_dim, capm, capy) AS (VALUES {', '.join(rows)})"

    def _lines(self) -> str:
        """WITH members, rules, [ytd,] agg, lines: what both statements start from."""
        by_month = self._clamp("a.raw", "-r.capm", "r.capm")
        monthly = f"CASE WHEN r.capm IS NULL THEN a.raw ELSE {by_month} END"
        if self.yearly_capped:
            capped = self._clamp(f"COALESCE(y.before, 0) + {monthly}", "-r.capy", "r.capy")
            counted = (
                f"CASE WHEN r.capy IS NULL THEN {monthly} ELSE {capped} - COALESCE(y.before, 0) END"
            )
            ytd_join = "LEFT JOIN ytd y ON y.person_id = a.person_id AND y.code = a.code"
            ytd_cte = """
-- Points yearly-capped indicators already counted in this year's closed months.
ytd AS (
  SELECT t.person_id, t.indicator_code AS code, SUM(t.counted) AS before
  FROM month_indicator_total t JOIN members m ON m.person_id = t.person_id
  WHERE t.period >= :year_start AND t.period < :period
  GROUP BY t.person_id, t.indicator_code
),"""
        else:
            counted, ytd_join, ytd_cte = monthly, "", ""
        return f"""
WITH
members AS ({MEMBERS_SQL}),
{self._rules()},{ytd_cte}
agg AS (
  SELECT ledger_entry.person_id, ledger_entry.indicator_code AS code,
         SUM(ledger_entry.points) AS raw,
         -- entries less reversals: what keeps a zero-point veto standing
         SUM(CASE WHEN ledger_entry.reversal_of_id IS NULL THEN 1 ELSE -1 END) AS net
  FROM ledger_entry
  WHERE ledger_entry.period = :period AND {APPROVED_SQL}
    -- IN rather than a join: SQLite then probes the (period, person) index member by member.
    AND ledger_entry.person_id IN (SELECT m.person_id FROM members m)
  GROUP BY ledger_entry.person_id, ledger_entry.indicator_code
),
-- Caps are per indicator, so they apply here, before anything is summed across indicators.
lines AS (
  SELECT a.person_id, a.code, r.kind, r.base_dim, r.capy, a.net, {counted} AS counted
  FROM agg a JOIN rules r ON r.code = a.code {ytd_join}
)"""

    def _dimension_columns(self) -> tuple[list[str], list[tuple[str, str]]]:
        """The per-member pass's sums, and (code, score over them) per top-level dimension.

        A sum per dimension and sub-dimension: `points(code)` adds one and returns how the
        scores read it. Scores are formed as `score_month` forms them: a sub-dimension is its
        baseline plus its points, clamped to [0, its max]; a dimension is its unallotted baseline
        plus its own points plus its sub-dimensions' scores, clamped to [0, its max].
        """
        zero = "CAST(0 AS NUMERIC)"
        sums: list[str] = []

        def points(code: str) -> str:
            column = f"s{len(sums)}"
            sums.append(f"SUM(CASE WHEN l.base_dim = {self._param(code)} THEN l.counted END)"
                        f" AS {column}")
            return f"COALESCE(pm.{column}, {zero})"

        scores = []
        for d in self.scheme.dimensions:
            full = d.baseline is Baseline.full
            unallotted = d.max - sum((s.max for s in d.subdimensions), Decimal(0))
            parts = [self._num(unallotted if full else Decimal(0)), points(d.code)]
            parts.extend(
                self._clamp(f"{self._num(s.max if full else Decimal(0))} + {points(s.code)}",
                            zero, self._num(s.max))
                for s in d.subdimensions
            )
            scores.append((d.code, self._clamp(" + ".join(parts), zero, self._num(d.max))))
        return sums, scores

    def _base_expr(self, positive: str) -> str:
        capped = self._least(positive, self._num(self.scheme.period.base_cap))
        if self.scheme.period.deductions is DeductionMode.base:
            # Deductions bite after the cap, so a member above the cap still feels them.
            return self._greatest("CAST(0 AS NUMERIC)", f"{capped} + COALESCE(sc.deducted, 0)")
        return capped

    def _bonus_expr(self) -> str:
        cap = self.scheme.period.bonus.cap_per_month
        raw = "COALESCE(sc.bonus_raw, 0)"
        return raw if cap is None else self._least(raw, self._num(cap))

    def _dimensions_json(self, codes: list[str]) -> str:
        fields = ", ".join(f"CAST({self._param(code)} AS TEXT), ROUND(sc.d{n}, 2)"
                           for n, code in enumerate(codes))
        return f"json_build_object({fields})" if self.pg else f"json_object({fields})"

    def insert_results(self) -> str:
        """INSERT … SELECT of every member's frozen month with ranks."""
        kinds = IndicatorKind
        sums, scores = self._dimension_columns()
        sum_columns = "".join(f",\n         {column}" for column in sums)
        score_columns = "".join(f",\n         {score} AS d{n}"
                                for n, (_, score) in enumerate(scores))
        positive = " + ".join(f"sc.d{n}" for n in range(len(scores)))
        void = "NULL" if self.scheme.veto.period_score is VetoEffect.none else "0"
        return f"""{self._lines()},
-- The one pass over the lines per member; members without entries have no row here.
per_member AS (
  SELECT l.person_id{sum_columns},
         SUM(CASE WHEN l.kind = '{kinds.deduction.value}' THEN l.counted END) AS deducted,
         SUM(CASE WHEN l.kind = '{kinds.bonus.value}' THEN l.counted END) AS bonus_raw,
         -- a veto stands while more of its entries are approved than reversed
         MAX(CASE WHEN l.kind = '{kinds.veto.value}' AND l.net > 0 THEN 1 ELSE 0 END) AS vetoed
  FROM lines l GROUP BY l.person_id
),
-- Every member, with the score of each top-level dimension (d0, d1, … in scheme order).
scored AS (
  SELECT m.person_id, m.branch_id{score_columns},
         pm.deducted, pm.bonus_raw, COALESCE(pm.vetoed, 0) = 1 AS vetoed
  FROM members m LEFT JOIN per_member pm ON pm.person_id = m.person_id
),
month AS (
  SELECT sc.person_id, sc.branch_id, sc.vetoed,
         {self._base_expr(f"({positive})")} AS base,
         {self._bonus_expr()} AS bonus,
         {self._dimensions_json([code for code, _ in scores])} AS dimensions
  FROM scored sc
),
totals AS (
  SELECT mo.*, CASE WHEN mo.vetoed THEN {void} ELSE ROUND(mo.base + mo.bonus, 2) END AS total
  FROM month mo
)
INSERT INTO month_result (period_close_id, period, person_id, branch_id, base, bonus, total,
                          vetoed, rank_in_branch, rank_in_committee, dimensions)
SELECT :close_id, :period, t.person_id, t.branch_id, ROUND(t.base, 2), ROUND(t.bonus, 2),
       t.total, t.vetoed,
       CASE WHEN t.total IS NULL THEN NULL ELSE
         RANK() OVER (PARTITION BY t.branch_id, t.total IS NULL ORDER BY t.total DESC) END,
       CASE WHEN t.total IS NULL THEN NULL ELSE
         RANK() OVER (PARTITION BY t.total IS NULL ORDER BY t.total DESC) END,
       t.dimensions
FROM totals t"""

    def insert_year_totals(self) -> str:
        """INSERT … SELECT of counted points for yearly-capped indicators."""
        return f"""{self._lines()}
INSERT INTO month_indicator_total (period_close_id, period, person_id, indicator_code, counted)
SELECT :close_id, :period, l.person_id, l.code, l.counted
FROM lines l WHERE l.capy IS NOT NULL"""
