"""Month close: score every member of a subtree in one set-based statement and freeze it.

The rule of record is `app.domain.scoring.score_month`; this module computes the same numbers in
SQL so that closing 100,000 members costs about as much as one aggregate over their entries.
`tests/test_month_close.py` checks that the two agree on random ledgers, on both databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, func, select

from app.domain.periods import parse_month
from app.domain.scheme import Baseline, DeductionMode, IndicatorKind, Scheme, VetoEffect
from app.domain.vocab import MemberType, OrgKind
from app.models import LedgerEntry, Organization, PeriodClose
from app.services import audit, schemes
from app.services.ledger import APPROVED_SQL, closed_period_owner, pending_clause


class MonthCloseError(ValueError):
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
    for statement in statements:
        session.execute(text(statement), params)
    pending = _count_pending(session, subtree, period)
    audit.record(session=session, actor_label=actor_label, action="close", entity="period",
                 entity_id=close.id,
                 after={"organization_id": org.id, "period": period, "members": members,
                        "scheme_version_id": version.id, "pending_not_counted": pending})
    return CloseOutcome(close, created=True, pending_not_counted=pending)


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
    """The month-scoring rule of `score_month`, written as SQL for one scheme."""

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

    def _clamp(self, expr: str, low: str, high: str) -> str:
        if self.pg:
            return f"GREATEST({low}, LEAST({high}, {expr}))"
        return f"MAX({low}, MIN({high}, {expr}))"

    def _rules(self) -> str:
        rows = [
            f"({self._param(i.code)}, {self._param(i.dimension)}, {self._param(i.kind.value)}, "
            f"{self._num(i.cap_per_month)}, {self._num(i.cap_per_year)})"
            for i in self.scheme.indicators
        ]
        return f"rules(code, dim, kind, capm, capy) AS (VALUES {', '.join(rows)})"

    def _dims(self) -> str:
        rows = []
        for d in self.scheme.dimensions:
            full = d.baseline is Baseline.full
            direct = d.max - sum((s.max for s in d.subdimensions), Decimal(0)) if full else 0
            rows.append(f"({self._param(d.code)}, CAST(NULL AS VARCHAR), {self._num(d.max)}, "
                        f"{self._num(Decimal(direct))})")
            rows.extend(
                f"({self._param(s.code)}, {self._param(d.code)}, {self._num(s.max)}, "
                f"{self._num(s.max if full else Decimal(0))})"
                for s in d.subdimensions
            )
        return f"dims(code, parent, maxv, baseline) AS (VALUES {', '.join(rows)})"

    def _ctes(self) -> str:
        kinds = IndicatorKind
        in_base = [kinds.score.value]
        if self.scheme.period.deductions is DeductionMode.dimension:
            in_base.append(kinds.deduction.value)
        in_base_sql = ", ".join(f"'{k}'" for k in in_base)
        by_month = self._clamp("a.raw", "-r.capm", "r.capm")
        monthly = f"CASE WHEN r.capm IS NULL THEN a.raw ELSE {by_month} END"
        if self.yearly_capped:
            capped = self._clamp(f"COALESCE(y.before, 0) + {monthly}", "-r.capy", "r.capy")
            counted = (
                f"CASE WHEN r.capy IS NULL THEN {monthly} ELSE {capped} - COALESCE(y.before, 0) END"
            )
            ytd_join = "LEFT JOIN ytd y ON y.person_id = a.person_id AND y.code = a.code"
            ytd_cte = """,
ytd AS (
  SELECT t.person_id, t.indicator_code AS code, SUM(t.counted) AS before
  FROM month_indicator_total t JOIN members m ON m.person_id = t.person_id
  WHERE t.period >= :year_start AND t.period < :period
  GROUP BY t.person_id, t.indicator_code
)"""
        else:
            counted, ytd_join, ytd_cte = monthly, "", ""
        zero = "CAST(0 AS NUMERIC)"
        return f"""
WITH
members AS ({MEMBERS_SQL}),
{self._rules()},
{self._dims()}{ytd_cte},
agg AS (
  SELECT ledger_entry.person_id, ledger_entry.indicator_code AS code,
         SUM(ledger_entry.points) AS raw,
         SUM(CASE WHEN ledger_entry.reversal_of_id IS NULL THEN 1 ELSE -1 END) AS net
  FROM ledger_entry JOIN members m ON m.person_id = ledger_entry.person_id
  WHERE ledger_entry.period = :period AND {APPROVED_SQL}
  GROUP BY ledger_entry.person_id, ledger_entry.indicator_code
),
lines AS (
  SELECT a.person_id, a.code, r.dim, r.kind, r.capy, a.net, {counted} AS counted
  FROM agg a JOIN rules r ON r.code = a.code {ytd_join}
),
dimsum AS (
  SELECT person_id, dim, SUM(counted) AS base_sum FROM lines
  WHERE dim IS NOT NULL AND kind IN ({in_base_sql})
  GROUP BY person_id, dim
),
parts AS (
  SELECT m.person_id, d.code, d.parent, d.maxv,
         d.baseline + COALESCE(s.base_sum, {zero}) AS rawpart,
         {self._clamp(f"d.baseline + COALESCE(s.base_sum, {zero})", zero, "d.maxv")} AS subscore
  FROM members m CROSS JOIN dims d
  LEFT JOIN dimsum s ON s.person_id = m.person_id AND s.dim = d.code
),
tops AS (
  SELECT person_id, COALESCE(parent, code) AS code,
         {self._clamp(
             "SUM(CASE WHEN parent IS NULL THEN rawpart ELSE subscore END)",
             zero, "MAX(CASE WHEN parent IS NULL THEN maxv END)")} AS score
  FROM parts GROUP BY person_id, COALESCE(parent, code)
),
per_person AS (
  SELECT person_id,
         SUM(CASE WHEN kind = '{kinds.deduction.value}' THEN counted ELSE 0 END) AS deducted,
         SUM(CASE WHEN kind = '{kinds.bonus.value}' THEN counted ELSE 0 END) AS bonus_raw,
         MAX(CASE WHEN kind = '{kinds.veto.value}' AND net > 0 THEN 1 ELSE 0 END) AS vetoed
  FROM lines GROUP BY person_id
),
scored AS (
  SELECT t.person_id, SUM(t.score) AS positive, {self._json_agg()} AS dimensions
  FROM tops t GROUP BY t.person_id
),
final AS (
  SELECT m.person_id, m.branch_id, s.dimensions,
         {self._base_expr()} AS base,
         {self._bonus_expr()} AS bonus,
         COALESCE(pp.vetoed, 0) AS vetoed
  FROM members m JOIN scored s ON s.person_id = m.person_id
  LEFT JOIN per_person pp ON pp.person_id = m.person_id
)"""

    def _json_agg(self) -> str:
        score = "ROUND(t.score, 2)"
        if self.pg:
            return f"json_object_agg(t.code, {score})"
        return f"json_group_object(t.code, {score})"

    def _base_expr(self) -> str:
        cap = self._num(self.scheme.period.base_cap)
        capped = f"(CASE WHEN s.positive > {cap} THEN {cap} ELSE s.positive END)"
        if self.scheme.period.deductions is DeductionMode.base:
            deducted = f"{capped} + COALESCE(pp.deducted, 0)"
            return f"(CASE WHEN {deducted} < 0 THEN 0 ELSE {deducted} END)"
        return capped

    def _bonus_expr(self) -> str:
        cap = self.scheme.period.bonus.cap_per_month
        raw = "COALESCE(pp.bonus_raw, 0)"
        if cap is None:
            return raw
        return f"(CASE WHEN {raw} > {self._num(cap)} THEN {self._num(cap)} ELSE {raw} END)"

    def insert_results(self) -> str:
        """INSERT … SELECT of every member's frozen month with ranks."""
        void = "NULL" if self.scheme.veto.period_score is VetoEffect.none else "0"
        total = f"CASE WHEN f.vetoed = 1 THEN {void} ELSE ROUND(f.base + f.bonus, 2) END"
        return f"""{self._ctes()},
totals AS (
  SELECT f.*, {total} AS total FROM final f
)
INSERT INTO month_result (period_close_id, period, person_id, branch_id, base, bonus, total,
                          vetoed, rank_in_branch, rank_in_committee, dimensions)
SELECT :close_id, :period, t.person_id, t.branch_id, ROUND(t.base, 2), ROUND(t.bonus, 2),
       t.total, t.vetoed = 1,
       CASE WHEN t.total IS NULL THEN NULL ELSE
         RANK() OVER (PARTITION BY t.branch_id, t.total IS NULL ORDER BY t.total DESC) END,
       CASE WHEN t.total IS NULL THEN NULL ELSE
         RANK() OVER (PARTITION BY t.total IS NULL ORDER BY t.total DESC) END,
       t.dimensions
FROM totals t"""

    def insert_year_totals(self) -> str:
        """INSERT … SELECT of counted points for yearly-capped indicators."""
        return f"""{self._ctes()}
INSERT INTO month_indicator_total (period_close_id, period, person_id, indicator_code, counted)
SELECT :close_id, :period, l.person_id, l.code, l.counted
FROM lines l WHERE l.capy IS NOT NULL"""

