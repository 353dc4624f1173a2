"""Explaining scores: a member's month down to the entries, and a branch's board."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.engine import URL
from sqlmodel import Session, col, func, select

from app.domain.periods import parse_month
from app.domain.refusals import Refused
from app.domain.scheme import Scheme
from app.domain.scoring import (
    MonthScore,
    QuarterSummary,
    YearScore,
    assign_tiers,
    branch_average,
    competition_rank,
    counted_to_date,
    grade_for,
    score_month,
    score_quarter,
    score_year,
)
from app.models import (
    EntryReview,
    LedgerEntry,
    MemberType,
    MonthResult,
    Organization,
    OrgKind,
    Person,
)
from app.services import audit, orgs, schemes
from app.services.ledger import Pending, approved_facts, pending_totals, status_of
from app.services.versioned import VersionedCache, clear_all


class ReportError(Refused):
    """A report cannot be produced; the message is for the user, in Chinese."""


@dataclass(frozen=True)
class EntryLine:
    """One ledger entry as a member reads it."""

    id: int
    period: str
    indicator_code: str
    indicator_name: str
    count: int
    points: Decimal
    status: str
    source: str
    occurred_on: date
    reason: str
    created_by: str
    reversal_of: int | None
    review_reason: str | None


@dataclass(frozen=True)
class BoardRow:
    """A member's line on a branch board."""

    person_id: int
    name: str
    base: Decimal
    bonus: Decimal
    total: Decimal | None
    vetoed: bool
    rank: int | None


@dataclass(frozen=True)
class BranchBoard:
    """A branch's month: every member's scores and ranks, and the branch average."""

    branch_id: int
    branch_name: str
    period: str
    closed: bool
    rows: list[BoardRow]
    average: Decimal | None


@dataclass(frozen=True)
class MemberMonth:
    """Why a member's month scores what it does."""

    person_id: int
    name: str
    branch_name: str
    period: str
    closed: bool
    scheme_version: int
    score: MonthScore
    total: Decimal | None
    rank_in_branch: int | None
    branch_size: int
    entries: list[EntryLine]


def branch_of(session: Session, person: Person) -> Organization:
    """The branch a person counts in (a 党小组 member counts in its branch)."""
    home = session.get(Organization, person.organization_id)
    assert home is not None
    if home.kind == OrgKind.group and home.parent_id is not None:
        parent = session.get(Organization, home.parent_id)
        assert parent is not None
        return parent
    return home


_schemes_in_force: VersionedCache[tuple[str, str], tuple[Scheme, int, int]] = VersionedCache(
    size=4096)


def _scheme_for(session: Session, org: Organization, period: str) -> tuple[Scheme, int, int]:
    """The scheme in force (with its version number and id), reused until the data changes."""
    def find() -> tuple[Scheme, int, int]:
        version = schemes.version_for(session=session, org=org, period=period)
        if version is None:
            raise ReportError(f"{period} 没有生效的积分方案")
        assert version.id is not None
        return schemes.scheme_of(version), version.version, version.id

    return _schemes_in_force.get_or_build(session, (org.path, period), find)


def months_in_order(
    *, session: Session, org: Organization, person_ids: list[int], year: int, last: int
) -> dict[int, dict[str, MonthScore]]:
    """Every member's months from January to `last`, each under its own scheme version, with
    yearly caps carried from month to month exactly as month close carries them."""
    periods = [f"{year:04d}-{m:02d}" for m in range(1, last + 1)]
    facts = approved_facts(session=session, person_ids=person_ids, periods=periods)
    out: dict[int, dict[str, MonthScore]] = {pid: {} for pid in person_ids}
    for period in periods:
        version = schemes.version_for(session=session, org=org, period=period)
        if version is None:
            continue
        scheme = schemes.scheme_of(version)
        for pid in person_ids:
            earlier = out[pid].values()
            out[pid][period] = score_month(scheme=scheme, entries=facts.get((pid, period), []),
                                           year_to_date=counted_to_date(earlier))
    return out


def live_scores(
    *, session: Session, org: Organization, person_ids: list[int], period: str
) -> dict[int, MonthScore]:
    """Scores of one month from the ledger as it stands (what month close would freeze)."""
    year, month = parse_month(period)
    scheme, _, _ = _scheme_for(session, org, period)  # cached: callers may have asked already
    if any(i.cap_per_year is not None for i in scheme.indicators):
        months = months_in_order(session=session, org=org, person_ids=person_ids, year=year,
                                 last=month)
        return {pid: months[pid][period] for pid in person_ids}
    facts = approved_facts(session=session, person_ids=person_ids, periods=[period])
    return {pid: score_month(scheme=scheme, entries=facts.get((pid, period), []))
            for pid in person_ids}


def _branch_members(session: Session, branch: Organization) -> list[Person]:
    return list(
        session.exec(
            select(Person)
            .join(Organization, col(Organization.id) == Person.organization_id)
            .where(
                col(Organization.path).startswith(branch.path),
                col(Person.active).is_(True),
                Person.member_type != MemberType.masses,
            )
            .order_by(col(Person.id))
        )
    )


def branch_board(*, session: Session, branch: Organization, period: str) -> BranchBoard:
    """The branch's board for a month: frozen results when closed, else live from the ledger."""
    parse_month(period)
    frozen = session.exec(
        select(MonthResult, Person.name)
        .join(Person, col(Person.id) == MonthResult.person_id)
        .where(MonthResult.period == period, MonthResult.branch_id == branch.id)
    ).all()
    if not frozen:
        return _live_boards.get(session=session, branch=branch, period=period).board
    rows = [BoardRow(r.person_id, name, r.base, r.bonus, r.total, r.vetoed, r.rank_in_branch)
            for r, name in frozen]
    return _board(branch, period, rows, closed=True)


def _board(branch: Organization, period: str, rows: list[BoardRow], *, closed: bool
           ) -> BranchBoard:
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.person_id))
    return BranchBoard(branch.id or 0, branch.name, period, closed, rows,
                       branch_average(r.total for r in rows))


@dataclass(frozen=True)
class LiveMonth:
    """A branch's open month scored from the ledger at one data version."""

    version: int
    branch: Organization
    board: BranchBoard
    scores: dict[int, MonthScore]
    ranks: dict[int, int | None]
    pending: dict[int, Pending]
    # Members whose month was frozen by another close (they moved here): not live here.
    frozen: frozenset[int]

    def standing(self, person_id: int, scheme: tuple[Scheme, int, int]) -> MemberStanding | None:
        """A member's standing read off the board, if the member is scored live here."""
        score = self.scores.get(person_id)
        if score is None or person_id in self.frozen:
            return None
        return MemberStanding(self.branch, False, scheme[0], scheme[1], score, score.total,
                              self.ranks[person_id], len(self.board.rows),
                              self.pending.get(person_id, Pending.NONE))


def _live_month(session: Session, branch: Organization, period: str) -> LiveMonth:
    version = audit.data_version(session)
    members = _branch_members(session, branch)
    ids = [p.id or 0 for p in members]
    scores = live_scores(session=session, org=branch, person_ids=ids, period=period)
    ranks = competition_rank({pid: s.total for pid, s in scores.items()})
    rows = [BoardRow(p.id, p.name, scores[p.id].base, scores[p.id].bonus, scores[p.id].total,
                     scores[p.id].vetoed, ranks[p.id]) for p in members]
    frozen = session.exec(select(MonthResult.person_id).where(
        MonthResult.period == period, col(MonthResult.person_id).in_(ids))).all()
    return LiveMonth(version, branch, _board(branch, period, rows, closed=False), scores, ranks,
                     pending_totals(session=session, person_ids=ids, period=period),
                     frozenset(frozen))


class LiveBoardCache:
    """Live months of branches, kept until the data version moves.

    Scoring a 700-member branch live costs over a hundred milliseconds, and every /我的积分
    needs the asker's rank. Every write that can change a board (entries, reviews, roster,
    schemes, closes) is audited and so moves the data version. One thread rebuilds a board at
    a time; the others keep using the previous one meanwhile (callers that need their own
    numbers exact compute those fresh unless the board is of their version, see
    `member_standing`).
    """

    def __init__(self, *, max_age_s: float = 600.0, size: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self.size = size
        self.clock = clock
        self._months: OrderedDict[tuple[URL, int, str], tuple[float, LiveMonth]] = (
            OrderedDict())
        self._building: dict[tuple[URL, int, str], threading.Event] = {}
        self._lock = threading.Lock()

    def fresh(self, *, session: Session, branch_id: int, period: str) -> LiveMonth | None:
        """The branch's live month if it was scored at the session's data version."""
        version = audit.data_version(session)
        with self._lock:
            cached = self._months.get((session.get_bind().url, branch_id, period))
        if cached is None or cached[1].version != version:
            return None
        return cached[1]

    def get(self, *, session: Session, branch: Organization, period: str) -> LiveMonth:
        """The branch's live month: cached while nothing changed, else rebuilt by one thread."""
        version = audit.data_version(session)
        key = (session.get_bind().url, branch.id or 0, period)
        while True:
            with self._lock:
                cached = self._months.get(key)
                if (cached and cached[1].version == version
                        and self.clock() - cached[0] < self.max_age_s):
                    self._months.move_to_end(key)
                    return cached[1]
                building = self._building.get(key)
                if building is None:
                    self._building[key] = threading.Event()
                    break
            if cached is not None:
                return cached[1]
            building.wait(30)
        try:
            month = _live_month(session, branch, period)
            if not audit.wrote(session):
                with self._lock:
                    self._months[key] = (self.clock(), month)
                    self._months.move_to_end(key)
                    while len(self._months) > self.size:
                        self._months.popitem(last=False)
            return month
        finally:
            with self._lock:
                self._building.pop(key).set()

    def clear(self) -> None:
        """Forget every board."""
        with self._lock:
            self._months.clear()


_live_boards = LiveBoardCache()


def clear_live_boards() -> None:
    """Forget cached boards, schemes and standings (a database was reset under the process,
    as tests do)."""
    _live_boards.clear()
    clear_all()


def _entry_lines(session: Session, scheme: Scheme, person_id: int, period: str) -> list[EntryLine]:
    entries = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.person_id == person_id, LedgerEntry.period == period)
        .order_by(col(LedgerEntry.occurred_on), col(LedgerEntry.id))
    ).all()
    reviews = {
        r.entry_id: r
        for r in session.exec(
            select(EntryReview).where(col(EntryReview.entry_id).in_([e.id for e in entries]))
        )
    }
    names = scheme.indicator_by_code
    return [
        EntryLine(
            id=e.id or 0, period=e.period, indicator_code=e.indicator_code,
            indicator_name=names[e.indicator_code].name if e.indicator_code in names
            else e.indicator_code,
            count=e.count, points=e.points, status=status_of(session=session, entry=e).value,
            source=e.source, occurred_on=e.occurred_on, reason=e.reason,
            created_by=e.created_by_label, reversal_of=e.reversal_of_id,
            review_reason=reviews[e.id].reason if e.id in reviews else None,
        )
        for e in entries
    ]


def member_entries(*, session: Session, person: Person, periods: list[str]) -> list[EntryLine]:
    """A member's entries over several months, oldest first, each named by its month's scheme."""
    branch = branch_of(session, person)
    lines: list[EntryLine] = []
    for period in periods:
        try:
            scheme, _, _ = _scheme_for(session, branch, period)
        except ReportError:
            continue  # no scheme in force, so nothing can have been recorded that month
        lines.extend(_entry_lines(session, scheme, person.id or 0, period))
    return lines


def reversals_of(*, session: Session, entry_ids: list[int]) -> dict[int, int]:
    """Which of the given entries have been reversed, and by which entry: {original: reversal}."""
    if not entry_ids:
        return {}
    rows = session.exec(
        select(LedgerEntry.reversal_of_id, LedgerEntry.id).where(
            col(LedgerEntry.reversal_of_id).in_(entry_ids)
        )
    ).all()
    return {original: reversal for original, reversal in rows if original is not None}


@dataclass(frozen=True)
class MemberStanding:
    """A member's month in short: the score (fresh from the ledger), the rank in the branch
    and what still awaits review."""

    branch: Organization
    closed: bool
    scheme: Scheme
    scheme_version: int
    score: MonthScore
    total: Decimal | None
    rank_in_branch: int | None
    branch_size: int
    pending: Pending


_standings: VersionedCache[tuple[int, str], MemberStanding] = VersionedCache()
_branch_ids: VersionedCache[int, int] = VersionedCache()


def member_standing(*, session: Session, person: Person, period: str) -> MemberStanding:
    """Score and rank: frozen when closed; else the member's own score fresh, ranked against
    the branch's (cached) live board, so a member always sees their newest points counted.

    Reused while the data version stands: every ledger change moves it, so a standing is
    never older than the points it counts, and a repeated `/我的积分` costs one query; so does
    a first one once the branch's board is of the current version."""
    return _standings.get_or_build(
        session, (person.id or 0, period),
        lambda: _member_standing(session=session, person=person, period=period))


def _member_standing(*, session: Session, person: Person, period: str) -> MemberStanding:
    parse_month(period)
    branch_id = _branch_ids.get_or_build(session, person.organization_id,
                                         lambda: branch_of(session, person).id or 0)
    live = _live_boards.fresh(session=session, branch_id=branch_id, period=period)
    if live is not None:
        found = live.standing(person.id or 0, _scheme_for(session, live.branch, period))
        if found is not None:
            return found
    branch = branch_of(session, person)
    scheme, version_number, _ = _scheme_for(session, branch, period)
    score = live_scores(session=session, org=branch, person_ids=[person.id or 0],
                        period=period)[person.id or 0]
    pending = pending_totals(session=session, person_ids=[person.id or 0], period=period)
    mine = pending.get(person.id or 0, Pending.NONE)
    frozen = session.exec(
        select(MonthResult).where(MonthResult.period == period,
                                  MonthResult.person_id == person.id)
    ).first()
    if frozen is not None:
        branch_size = session.exec(
            select(func.count()).select_from(MonthResult).where(
                MonthResult.period == period, MonthResult.branch_id == frozen.branch_id)).one()
        return MemberStanding(branch, True, scheme, version_number, score, frozen.total,
                              frozen.rank_in_branch, branch_size, mine)
    board = branch_board(session=session, branch=branch, period=period)
    others = [r.total for r in board.rows if r.person_id != person.id]
    rank = (None if score.total is None
            else 1 + sum(1 for t in others if t is not None and t > score.total))
    return MemberStanding(branch, False, scheme, version_number, score, score.total, rank,
                          len(others) + 1, mine)


def member_month(*, session: Session, person: Person, period: str) -> MemberMonth:
    """A member's month explained: dimensions, indicators and the entries behind them."""
    standing = member_standing(session=session, person=person, period=period)
    return MemberMonth(
        person_id=person.id or 0, name=person.name,
        branch_name=orgs.display_path(session, standing.branch), period=period,
        closed=standing.closed, scheme_version=standing.scheme_version, score=standing.score,
        total=standing.total, rank_in_branch=standing.rank_in_branch,
        branch_size=standing.branch_size,
        entries=_entry_lines(session, standing.scheme, person.id or 0, period),
    )


@dataclass(frozen=True)
class YearRow:
    """A member's year: the annual score by the scheme's formula, grade, rank and tier."""

    person_id: int
    name: str
    year: YearScore | None
    grade: str | None
    rank: int | None
    tier: str | None
    months: dict[str, MonthScore]
    quarters: dict[str, QuarterSummary]


@dataclass(frozen=True)
class YearBoard:
    """A branch's year so far, through month `through`."""

    branch_id: int
    branch_name: str
    year: int
    through: int
    rows: list[YearRow]
    average: Decimal | None


def first_eligible_month(person: Person, year: int) -> int | None:
    """The first month of `year` a member counts in: joining mid-year is pro-rated, not punished.

    Joining is read from the roster's join date; transfers are not tracked yet.
    """
    joined = person.joined_party_on
    if joined is None or joined.year < year:
        return 1
    return joined.month if joined.year == year else None


# Scoring a 700-member branch's year means twelve months per member (over half a second by
# December); members asking for the year board in the chat or on the H5 page ask in bursts.
_years: VersionedCache[tuple[str, int, int], YearBoard] = VersionedCache(size=64)


def branch_year(*, session: Session, branch: Organization, year: int, through: int) -> YearBoard:
    """Annual scores of a branch's members through `through`, with grades, ranks and tiers
    (kept while the data version stands)."""
    if not 1 <= through <= 12:
        raise ReportError("月份应在 1–12 之间")
    return _years.get_or_build(session, (branch.path, year, through),
                               lambda: _branch_year(session, branch, year, through))


def _branch_year(session: Session, branch: Organization, year: int, through: int) -> YearBoard:
    scheme, _, _ = _scheme_for(session, branch, f"{year:04d}-{through:02d}")
    members = _branch_members(session, branch)
    months = months_in_order(session=session, org=branch, person_ids=[p.id for p in members],
                             year=year, last=through)
    partial: dict[int, tuple[YearScore | None, dict[str, MonthScore]]] = {}
    for person in members:
        start = first_eligible_month(person, year)
        if start is None or start > through:
            partial[person.id] = (None, {})
            continue
        eligible = {k: v for k, v in months[person.id].items() if int(k[5:]) >= start}
        score = score_year(scheme=scheme, months={int(k[5:]): v for k, v in eligible.items()},
                           democratic_review=None, eligible_months=through - start + 1)
        partial[person.id] = (score, eligible)
    totals = {pid: (y.score if y else None) for pid, (y, _) in partial.items()}
    ranks = competition_rank(totals)
    tiers = assign_tiers(scheme=scheme, ranked=totals)
    rows = []
    for person in members:
        score, eligible = partial[person.id]
        quarters = {}
        for q in range(1, 5):
            in_quarter = [v for k, v in eligible.items() if (int(k[5:]) - 1) // 3 + 1 == q]
            if in_quarter:
                quarters[f"{year}-Q{q}"] = score_quarter(scheme=scheme, months=in_quarter)
        rows.append(YearRow(person.id, person.name, score,
                            grade_for(scheme=scheme, score=totals[person.id]),
                            ranks[person.id], tiers[person.id], eligible, quarters))
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.person_id))
    return YearBoard(branch.id or 0, orgs.display_path(session, branch), year, through, rows,
                     branch_average(totals.values()))
