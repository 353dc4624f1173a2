"""Month-close benchmark: set-based close and branch boards against their plain-SQL ceilings.

Builds one committee with many branches and members, loads a month of ledger entries in bulk,
then times, in the same run and on the same rows:

1. the ceiling: a plain `GROUP BY person_id` sum over the month's entries;
2. `close_month` for the committee (three full runs: rolled back, rolled back, committed);
3. `branch_board` for 200-member branches, against a bare `SELECT` of the same frozen rows.

Progress goes to stderr; stdout gets exactly one JSON line. The exit status is non-zero when the
correctness check (result count, and 20 members re-scored by `score_month`) fails.

    .venv/bin/python benchmarks/month_close.py --pg            # 100k members, 3M entries
    .venv/bin/python benchmarks/month_close.py                 # SQLite, 10k members
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from typing import Any

# Runnable as `python benchmarks/month_close.py` from the repository root or anywhere else.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import make_engine, utcnow, write_session
from app.domain.scheme import Indicator, IndicatorKind, Scheme, Source, preset_text
from app.domain.vocab import OrgKind
from app.migrate import upgrade
from app.models import MonthResult, Organization, SchemeVersion
from app.services import orgs, schemes
from app.services.month_close import ScoringSql, close_month
from app.services.reports import branch_board, live_scores
from benchmarks.common import (
    PG_SERVER,
    log,
    percentile,
    psycopg_conninfo,
    scratch_database,
)

PERIOD = "2026-11"
EFFECTIVE = date(2026, 1, 1)
BIG_BRANCH_SIZE = 200
ACTOR = "bench"
# A fixed creation time keeps the load reproducible; the close never reads it.
CREATED_AT = "2026-11-30 12:00:00"

# How often each kind of indicator is recorded: daily scoring items and deductions dominate a
# real ledger, honours are occasional and a veto is rare (about 1 member in 70 at 30 entries).
KIND_WEIGHTS = {
    IndicatorKind.score: 0.78,
    IndicatorKind.deduction: 0.18,
    IndicatorKind.bonus: 0.0395,
    IndicatorKind.veto: 0.0005,
}
PENDING_SHARE = 0.02  # declared entries still awaiting review: the close must leave them out
DOUBLE_COUNT_SHARE = 0.1  # entries recorded with count 2 (e.g. two sessions in one line)

ENTRY_COLUMNS = (
    "person_id", "organization_id", "scheme_version_id", "indicator_code", "count", "points",
    "occurred_on", "period", "source", "status", "reason", "created_by_label", "created_at",
)
AGGREGATE_SQL = (
    f"SELECT person_id, SUM(points) FROM ledger_entry WHERE period = '{PERIOD}' GROUP BY person_id"
)
BOARD_CEILING_SQL = "SELECT * FROM month_result WHERE period = :p AND branch_id = :b"


@dataclass
class Built:
    """What setup made: ids the timed part and the checks need."""

    committee_id: int
    version_id: int
    scheme: Scheme
    big_branch_ids: list[int]
    branch_count: int
    person_branch: dict[int, int]
    entries: int = 0
    pending: int = 0
    load_s: float = 0.0
    analyze_s: float = 0.0


# ---------------------------------------------------------------- database lifecycle


# ---------------------------------------------------------------- setup (not timed)


def build_tree(engine: Engine, branches: int, big_branches: int) -> tuple[int, list[int], int]:
    """The committee, its branches and the published scheme; returns ids the load needs."""
    with write_session(engine) as session:
        committee = orgs.create_child(session, None, "基准测试党委", OrgKind.committee,
                                      actor_label=ACTOR)
        names = [f"第{i + 1}党支部" for i in range(branches)]
        names += [f"大型第{i + 1}党支部" for i in range(big_branches)]
        now = utcnow()
        # Thousands of create_child calls would each flush and audit; one executemany is
        # enough for setup, and the path is filled in below exactly as create_child makes it.
        session.execute(
            insert(Organization),
            [{"name": n, "kind": OrgKind.branch.value, "parent_id": committee.id,
              "path": "", "created_at": now} for n in names],
        )
        session.execute(
            text("UPDATE organization SET path = :prefix || CAST(id AS VARCHAR) || '/' "
                 "WHERE parent_id = :committee"),
            {"prefix": committee.path, "committee": committee.id},
        )
        version = schemes.publish(session=session, org=committee, content=preset_text("xinluo"),
                                  effective_from=EFFECTIVE, actor_label=ACTOR,
                                  source_name="xinluo.yaml")
        branch_ids = list(session.exec(
            select(Organization.id).where(Organization.parent_id == committee.id)
            .order_by(Organization.id)
        ))
        assert committee.id is not None and version.id is not None
        return committee.id, [i for i in branch_ids if i is not None], version.id


def assign_members(
    rng: random.Random, branch_ids: list[int], members: int, big_branches: int
) -> list[int]:
    """Branch id of each member, in insertion order: big branches get exactly 200 each."""
    normal, big = branch_ids[: len(branch_ids) - big_branches], branch_ids[-big_branches:]
    rest = members - BIG_BRANCH_SIZE * big_branches
    if rest < 0 or (rest > 0 and not normal):
        raise SystemExit("--members is too small for --big-branches × 200 (or no branches)")
    homes = [b for b in big for _ in range(BIG_BRANCH_SIZE)]
    homes += [normal[i % len(normal)] for i in range(rest)]
    # Shuffled so that a branch's members are not adjacent in the heap, as after years of
    # roster imports; otherwise the board would read one or two pages by luck.
    rng.shuffle(homes)
    return homes


@dataclass(frozen=True)
class Pick:
    """One indicator as the generator draws it."""

    code: str
    points: Decimal
    source: str


def indicator_sampler(
    scheme: Scheme, rng: random.Random
) -> tuple[Callable[[], Pick], Callable[[], Pick]]:
    """Draws for approved entries (weighted by kind) and for pending declared entries."""
    picks: list[Pick] = []
    weights: list[float] = []
    for kind, share in KIND_WEIGHTS.items():
        of_kind = [i for i in scheme.indicators if i.kind is kind]
        picks += [_pick(i) for i in of_kind]
        weights += [share / len(of_kind)] * len(of_kind)
    cumulative = list(accumulate(weights))
    total = cumulative[-1]
    declared = [_pick(i) for i in scheme.indicators
                if i.source is Source.declared and i.kind is not IndicatorKind.veto]

    def approved() -> Pick:
        return picks[bisect_right(cumulative, rng.random() * total)]

    def pending() -> Pick:
        return rng.choice(declared)

    return approved, pending


def _pick(indicator: Indicator) -> Pick:
    return Pick(indicator.code, indicator.points, indicator.source.value)


def entry_rows(
    built: Built, rng: random.Random, person_ids: list[int], per_member: int
) -> Iterator[tuple[Any, ...]]:
    """Ledger rows for the month, in ENTRY_COLUMNS order; about `per_member` per member."""
    approved, pending = indicator_sampler(built.scheme, rng)
    low, high = per_member // 2, per_member + per_member // 2  # mean per_member
    for pid in person_ids:
        branch = built.person_branch[pid]
        for _ in range(rng.randint(low, high)):
            is_pending = rng.random() < PENDING_SHARE
            pick = pending() if is_pending else approved()
            count = 2 if rng.random() < DOUBLE_COUNT_SHARE else 1
            built.entries += 1
            built.pending += is_pending
            yield (
                pid, branch, built.version_id, pick.code, count, str(pick.points * count),
                f"{PERIOD}-{rng.randint(1, 30):02d}", PERIOD, pick.source,
                "pending" if is_pending else "approved", "基准测试", ACTOR, CREATED_AT,
            )


def load_pg(url: str, built: Built, homes: list[int], rng: random.Random, per_member: int) -> None:
    """Persons and entries by COPY, then VACUUM ANALYZE so the planner and heap are settled."""
    started = time.perf_counter()
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY person (name, member_type, organization_id, active, created_at)"
                          " FROM STDIN") as copy:
                for n, branch in enumerate(homes):
                    copy.write_row((f"党员{n + 1}", "full", branch, True, CREATED_AT))
            cur.execute("SELECT id, organization_id FROM person ORDER BY id")
            built.person_branch = dict(cur.fetchall())
            log(f"persons loaded: {len(built.person_branch)}")
            columns = ", ".join(ENTRY_COLUMNS)
            with cur.copy(f"COPY ledger_entry ({columns}) FROM STDIN") as copy:
                # Text format, written in large chunks: far faster than write_row per row.
                chunk: list[str] = []
                for row in entry_rows(built, rng, list(built.person_branch), per_member):
                    chunk.append("\t".join(map(str, row)))
                    if len(chunk) >= 100_000:
                        copy.write("\n".join(chunk) + "\n")
                        chunk.clear()
                        if built.entries % 500_000 < 100_000:
                            log(f"  entries copied: {built.entries:,}")
                if chunk:
                    copy.write("\n".join(chunk) + "\n")
        conn.commit()
        built.load_s = time.perf_counter() - started
        log(f"entries loaded: {built.entries:,} in {built.load_s:.1f}s")
        started = time.perf_counter()
        conn.autocommit = True
        # VACUUM as well as ANALYZE: a freshly copied heap has no hint bits or visibility map,
        # so the first timed reader would pay for writing them; autovacuum would have done this
        # long before a real month end.
        conn.execute("VACUUM ANALYZE")
        built.analyze_s = time.perf_counter() - started
        log(f"vacuum analyze: {built.analyze_s:.1f}s")


def load_sqlite(
    engine: Engine, built: Built, homes: list[int], rng: random.Random, per_member: int
) -> None:
    """Persons and entries by executemany in big batches, all in one transaction."""
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        cur.execute("BEGIN")  # make_engine hands transaction control to us (isolation_level None)
        cur.executemany(
            "INSERT INTO person (name, member_type, organization_id, active, created_at)"
            " VALUES (?, 'full', ?, 1, ?)",
            [(f"党员{n + 1}", branch, CREATED_AT) for n, branch in enumerate(homes)],
        )
        built.person_branch = dict(
            cur.execute("SELECT id, organization_id FROM person ORDER BY id").fetchall()
        )
        marks = ", ".join("?" for _ in ENTRY_COLUMNS)
        statement = f"INSERT INTO ledger_entry ({', '.join(ENTRY_COLUMNS)}) VALUES ({marks})"
        batch: list[tuple[Any, ...]] = []
        for row in entry_rows(built, rng, list(built.person_branch), per_member):
            batch.append(row)
            if len(batch) >= 50_000:
                cur.executemany(statement, batch)
                batch.clear()
        if batch:
            cur.executemany(statement, batch)
        cur.execute("COMMIT")
        # Fold the WAL back now, or the first timed statement pays for the checkpoint.
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cur.close()
    finally:
        raw.close()
    built.load_s = time.perf_counter() - started
    log(f"persons {len(built.person_branch):,}, entries {built.entries:,} "
        f"loaded in {built.load_s:.1f}s")


def setup(engine: Engine, url: str, args: argparse.Namespace, rng: random.Random) -> Built:
    """Migrate, build the tree, publish xinluo and load the month's ledger."""
    started = time.perf_counter()
    upgrade(engine)
    log(f"migrated in {time.perf_counter() - started:.1f}s")
    committee_id, branch_ids, version_id = build_tree(engine, args.branches, args.big_branches)
    with Session(engine) as session:
        version = session.get(SchemeVersion, version_id)
        assert version is not None
        scheme = schemes.scheme_of(version)
    built = Built(committee_id, version_id, scheme, branch_ids[-args.big_branches:],
                  len(branch_ids), {})
    homes = assign_members(rng, branch_ids, args.members, args.big_branches)
    log(f"tree: 1 committee, {len(branch_ids)} branches; loading {args.members:,} members")
    if engine.dialect.name == "postgresql":
        load_pg(url, built, homes, rng, args.entries_per_member)
    else:
        load_sqlite(engine, built, homes, rng, args.entries_per_member)
    return built


# ---------------------------------------------------------------- timed part


def time_aggregate(engine: Engine, runs: int = 3) -> list[float]:
    """The ceiling: the plain per-member sum, every row fetched to the client."""
    out = []
    for n in range(runs):
        with engine.connect() as conn:
            started = time.perf_counter()
            rows = conn.execute(text(AGGREGATE_SQL)).fetchall()
            out.append(time.perf_counter() - started)
        log(f"aggregate run {n + 1}: {out[-1]:.3f}s ({len(rows):,} rows)")
    return out


def explain_close(engine: Engine, built: Built) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the close's INSERT … SELECT, in a rolled-back transaction."""
    dialect = engine.dialect.name
    sql = ScoringSql(built.scheme, dialect=dialect)
    statement = sql.insert_results()
    with Session(engine) as session:
        session.begin()
        close_id = session.execute(
            text("INSERT INTO period_close (organization_id, period, scheme_version_id, members,"
                 " closed_by, closed_at) VALUES (:o, :p, :v, 0, 'explain', :t) RETURNING id"),
            {"o": built.committee_id, "p": PERIOD, "v": built.version_id, "t": utcnow()},
        ).scalar_one()
        committee = session.get(Organization, built.committee_id)
        assert committee is not None
        params = {"period": PERIOD, "subtree": f"{committee.path}%", "close_id": close_id,
                  "year_start": f"{PERIOD[:4]}-01", **sql.params}
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
        plan = session.execute(text(prefix + statement), params).fetchall()
        session.rollback()
    print(statement, file=sys.stderr)
    for row in plan:
        print(" | ".join(str(c) for c in row), file=sys.stderr)


def time_close(engine: Engine, built: Built, runs: int = 3) -> tuple[list[float], float, int]:
    """close_month runs 1…n-1 rolled back, the last committed; each does the whole work."""
    out: list[float] = []
    commit_s = 0.0
    pending = 0
    for n in range(runs):
        last = n == runs - 1
        with Session(engine) as session:
            session.begin()
            committee = session.get(Organization, built.committee_id)
            assert committee is not None
            started = time.perf_counter()
            outcome = close_month(session=session, org=committee, period=PERIOD,
                                  actor_label=ACTOR)
            session.flush()  # the audit row, so every run writes everything it will commit
            out.append(time.perf_counter() - started)
            if not outcome.created:
                raise RuntimeError("close_month found the month already closed")
            pending = outcome.pending_not_counted
            if last:
                started = time.perf_counter()
                session.commit()
                commit_s = time.perf_counter() - started
            else:
                session.rollback()
        log(f"close run {n + 1}: {out[-1]:.3f}s ({'committed' if last else 'rolled back'})")
    return out, commit_s, pending


def time_boards(
    engine: Engine, built: Built, queries: int
) -> tuple[list[float], list[float], float]:
    """branch_board latencies (fresh session per call, as a request would use), its ceiling's
    latencies, and the mean number of rows per board."""
    with Session(engine) as session:
        branches = [session.get(Organization, i) for i in built.big_branch_ids]
        session.expunge_all()  # detached but loaded: branch_board reads only id, name, path
    ids = [b.id for b in branches if b is not None]
    if not ids:
        return [], [], 0.0

    def board(n: int) -> int:
        branch = branches[n % len(branches)]
        assert branch is not None
        with Session(engine) as session:
            return len(branch_board(session=session, branch=branch, period=PERIOD).rows)

    def ceiling(n: int) -> int:
        with engine.connect() as conn:
            return len(conn.execute(text(BOARD_CEILING_SQL),
                                    {"p": PERIOD, "b": ids[n % len(ids)]}).fetchall())

    # One untimed call per branch: SQLAlchemy compiles and caches each statement on first use.
    for n in range(len(ids)):
        board(n)
        ceiling(n)
    board_ms, ceiling_ms, rows = [], [], 0
    for n in range(queries):
        started = time.perf_counter()
        rows += board(n)
        board_ms.append((time.perf_counter() - started) * 1000)
    for n in range(queries):
        started = time.perf_counter()
        ceiling(n)
        ceiling_ms.append((time.perf_counter() - started) * 1000)
    return board_ms, ceiling_ms, rows / max(queries, 1)


# ---------------------------------------------------------------- verification


def verify(engine: Engine, built: Built, rng: random.Random, members: int) -> dict[str, Any]:
    """Result count, and 20 members' frozen month equal to `score_month` on their ledger."""
    with Session(engine) as session:
        count = session.execute(
            text("SELECT COUNT(*) FROM month_result WHERE period = :p"), {"p": PERIOD}
        ).scalar_one()
        # Mostly random members, plus a few vetoed and a few with pending entries when there
        # are any, since those are the paths where SQL and Python could most easily disagree.
        vetoed = list(session.execute(
            text("SELECT person_id FROM month_result WHERE period = :p AND vetoed"
                 " ORDER BY person_id"), {"p": PERIOD}).scalars())
        with_pending = list(session.execute(
            text("SELECT DISTINCT person_id FROM ledger_entry WHERE period = :p"
                 " AND status = 'pending' ORDER BY person_id"), {"p": PERIOD}).scalars())
        chosen = set(rng.sample(vetoed, min(2, len(vetoed))))
        chosen |= set(rng.sample(with_pending, min(2, len(with_pending))))
        everyone = sorted(built.person_branch)
        while len(chosen) < min(20, len(everyone)):
            chosen.add(rng.choice(everyone))
        ids = sorted(chosen)
        frozen = {r.person_id: r for r in session.exec(
            select(MonthResult).where(MonthResult.period == PERIOD,
                                      col(MonthResult.person_id).in_(ids)))}
        committee = session.get(Organization, built.committee_id)
        assert committee is not None
        # The Python rule of record, on the same approved entries, under the committee's scheme.
        live = live_scores(session=session, org=committee, person_ids=ids, period=PERIOD)
    mismatches = []
    for pid in ids:
        row, score = frozen.get(pid), live[pid]
        got = None if row is None else (row.base, row.bonus, row.total, row.vetoed)
        want = (score.base, score.bonus, score.total, score.vetoed)
        if got != want:
            mismatches.append({"person_id": pid, "frozen": str(got), "score_month": str(want)})
    for m in mismatches:
        log(f"MISMATCH {m}")
    ok = count == members and not mismatches
    log(f"verify: {count:,} results for {members:,} members; {len(ids)} re-scored, "
        f"{len(mismatches)} mismatches ({len([i for i in ids if i in vetoed])} vetoed)")
    return {"verified": ok, "month_results": count, "checked_members": len(ids),
            "mismatches": len(mismatches)}


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pg", action="store_true",
                       help=f"a fresh database partypoints_bench_<pid> on {PG_SERVER}, "
                            "dropped at the end")
    where.add_argument("--database-url", help="an existing, empty database (not dropped)")
    parser.add_argument("--members", type=int, help="default 100000 on PostgreSQL, 10000 SQLite")
    parser.add_argument("--branches", type=int, help="ordinary branches; default 5000 / 500")
    parser.add_argument("--big-branches", type=int, default=5,
                        help="extra branches of exactly 200 members (within --members)")
    parser.add_argument("--entries-per-member", type=int, default=30)
    parser.add_argument("--board-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--explain", action="store_true",
                        help="print the close statement and its plan to stderr (untimed)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database or file")
    args = parser.parse_args(argv)
    on_pg = args.pg or (args.database_url or "").startswith("postgresql")
    if args.members is None:
        args.members = 100_000 if on_pg else 10_000
    if args.branches is None:
        args.branches = 5_000 if on_pg else 500
    if args.big_branches < 1:
        parser.error("--big-branches must be at least 1: the board is timed on them")
    return args


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    engine = make_engine(url, pool_size=5)
    try:
        built = setup(engine, url, args, rng)
        dialect = engine.dialect.name
        aggregate = time_aggregate(engine)
        if args.explain:
            explain_close(engine, built)
        close, commit_s, pending = time_close(engine, built)
        board_ms, ceiling_ms, per_board = time_boards(engine, built, args.board_queries)
        log(f"board p50 {percentile(board_ms, 0.5):.2f} ms, "
            f"ceiling p50 {percentile(ceiling_ms, 0.5):.2f} ms")
        checks = verify(engine, built, rng, len(built.person_branch))
    finally:
        engine.dispose()
    aggregate_median = statistics.median(aggregate)
    close_median = statistics.median(close)
    return {
        "benchmark": "month_close",
        "dialect": dialect,
        "members": len(built.person_branch),
        "branches": built.branch_count,
        "big_branches": args.big_branches,
        "entries": built.entries,
        "pending_entries": built.pending,
        "pending_not_counted": pending,
        "seed": args.seed,
        "load_s": round(built.load_s, 2),
        "analyze_s": round(built.analyze_s, 2),
        "aggregate": {"median_s": round(aggregate_median, 4),
                      "runs": [round(s, 4) for s in aggregate]},
        "close": {"median_s": round(close_median, 4), "runs": [round(s, 4) for s in close],
                  "commit_s": round(commit_s, 4)},
        "close_over_aggregate": round(close_median / aggregate_median, 2),
        "target_close_over_aggregate": 2.0,
        "board": {
            "p50_ms": round(percentile(board_ms, 0.50), 3),
            "p95_ms": round(percentile(board_ms, 0.95), 3),
            "p99_ms": round(percentile(board_ms, 0.99), 3),
            "per_s": round(len(board_ms) / (sum(board_ms) / 1000), 1),
            "members_per_board": per_board,
            "queries": len(board_ms),
            "session": "fresh per call",
        },
        "board_ceiling": {"p50_ms": round(percentile(ceiling_ms, 0.50), 3)},
        "target_board_p50_ms": 10,
        **checks,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with scratch_database(url=args.database_url, postgres=args.pg,
                          name="partypoints_bench", keep=args.keep) as url:
        result = run(args, url)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
