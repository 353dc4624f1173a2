"""Check-in burst benchmark: a whole roster scanning the room's QR code against `/healthz`.

Builds one branch of thousands of active party members and one activity whose check-in window is
open now, on a scratch database (PostgreSQL with `--pg`, the default, or a SQLite temp file with
`--sqlite`), starts the real server (`uvicorn app.main:app`, one worker) as a subprocess, then
times, in the same run and against the same server:

1. the ceiling: `GET /healthz`, as many requests as there are members, at the same concurrency;
2. the burst: every member posts `POST /api/v1/checkins` once with their own bearer session and
   the token the room screen shows, `--concurrency` at a time. The screen is polled as the screen
   page does it (`GET /api/v1/activities/{id}/screen` as the branch secretary, every 3 s at most),
   and scanners always send the token it showed last, so tokens rotate during the run;
3. repeats: `--repeats` members who are already in scan again and must get `created: false`.

It then checks the database: one `check_in` row per member for the activity, no person twice.

Progress goes to stderr; stdout gets exactly one JSON line. The exit status is non-zero when an
answer is not 200, a burst answer is not `created: true` (or a repeat not `created: false`), the
row count is not the member count, or any person has two rows.

    .venv/bin/python benchmarks/checkin_burst.py --pg          # 2,000 members, 64 at a time
    .venv/bin/python benchmarks/checkin_burst.py --sqlite
    .venv/bin/python benchmarks/checkin_burst.py --pg --members 300 --repeats 50   # quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

# Runnable as `python benchmarks/checkin_burst.py` from the repository root or anywhere else.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from app.db import make_engine, utcnow, write_session
from app.domain.vocab import MemberType, OrgKind, Role
from app.migrate import upgrade
from app.models import Person, RoleAssignment
from app.services import orgs
from app.services.activities import create_activity
from app.services.checkin import current_token
from benchmarks.common import (
    PG_SERVER,
    figures,
    lanes,
    log,
    percentile,
    psycopg_conninfo,
    scratch_database,
    uvicorn_server,
)
from miniapp_api.session import issue_session

ROOT = Path(__file__).resolve().parent.parent
ACTOR = "bench"
CHECKIN_PATH = "/api/v1/checkins"
COMMITTEE = "基准测试党委"
BRANCH = "基准测试第一党支部"
TARGET_RATIO = 0.5  # check-ins per second over healthz per second
TARGET_P99_MS = 100
ROTATE_S_DEFAULT = 20  # the server's CHECKIN_QR_ROTATE_S default, unless --rotate-s is given
SCREEN_POLL_MAX_S = 3.0  # screen.html polls after min(3 s, time to the next code)
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
          "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "志强", "晓东")


# ---------------------------------------------------------------- database lifecycle


def require_postgres() -> None:
    """One clear line and exit status 2 when the local PostgreSQL server does not answer."""
    admin = psycopg_conninfo(f"{PG_SERVER}/postgres")
    try:
        with psycopg.connect(admin, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = make_url(PG_SERVER)
        print(f"checkin_burst: PostgreSQL is not reachable as {where.username}@{where.host}:"
              f"{where.port} ({reason}). Start it (e.g. `pg_ctlcluster 15 main start`), pass "
              "--database-url, or run with --sqlite.", file=sys.stderr)
        raise SystemExit(2) from None


# ---------------------------------------------------------------- setup (not timed)


@dataclass(frozen=True)
class Member:
    """One person the load generator scans as."""

    person_id: int
    name: str


@dataclass
class Built:
    """What setup made."""

    branch_id: int
    activity_id: int
    warmup_activity_id: int
    secretary_id: int
    members: list[Member]
    build_s: float = 0.0


def person_rows(members: int, branch_id: int) -> list[dict[str, Any]]:
    """Active party members homed in the branch, as a roster import writes them."""
    now = utcnow()
    rows = []
    for n in range(1, members + 1):
        rows.append({
            "name": _SURNAMES[(n * 7) % len(_SURNAMES)] + _GIVEN[(n * 5) % len(_GIVEN)],
            "phone": f"139{n:08d}",
            "dingtalk_userid": f"bench-dt-{n:06d}",
            "wecom_userid": f"bench-wx-{n:06d}",
            # One in twelve probationary, as in the demo: both kinds are expected attendees.
            "member_type": (MemberType.probationary if n % 12 == 11 else MemberType.full).value,
            "joined_party_on": date(1990 + (n * 3) % 33, 7, 1),
            "organization_id": branch_id,
            "active": True,
            "created_at": now,
        })
    return rows


def setup(engine: Engine, args: argparse.Namespace) -> Built:
    """Migrate; a committee, one branch, its members (bulk), a secretary, two open activities."""
    started = time.perf_counter()
    upgrade(engine)
    log(f"migrated in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    with write_session(engine) as session:
        committee = orgs.create_child(session, None, COMMITTEE, OrgKind.committee,
                                      actor_label=ACTOR)
        branch = orgs.create_child(session, committee, BRANCH, OrgKind.branch,
                                   actor_label=ACTOR)
        assert branch.id is not None
        # Thousands of roster rows one by one would take a while; one executemany is enough.
        session.execute(insert(Person), person_rows(args.members, branch.id))
        people = list(session.exec(select(Person).where(Person.organization_id == branch.id)
                                   .order_by(Person.id)))
        # Everyone holds 党员 in the branch, as after a roster import; the first is the secretary,
        # who runs the room screen (and scans in like everyone else).
        session.execute(insert(RoleAssignment), [
            {"person_id": p.id, "role": Role.member.value, "organization_id": branch.id,
             "created_at": utcnow()} for p in people
        ] + [{"person_id": people[0].id, "role": Role.branch_secretary.value,
              "organization_id": branch.id, "created_at": utcnow()}])
        now = utcnow()
        # Starts in 10 minutes: the default window opened 20 minutes ago and nobody is late.
        activity = create_activity(session=session, branch=branch, kind="主题党日",
                                   title="基准测试主题党日", starts_at=now + timedelta(minutes=10),
                                   place="大会议室")
        # The warm-up scans into an activity of its own, so the measured one sees only the burst.
        warmup = create_activity(session=session, branch=branch, kind="党课",
                                 title="基准测试预热党课", starts_at=now + timedelta(minutes=10))
        assert activity.id is not None and warmup.id is not None
        built = Built(branch.id, activity.id, warmup.id, people[0].id or 0,
                      [Member(p.id or 0, p.name) for p in people])
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    built.build_s = time.perf_counter() - started
    log(f"{len(built.members):,} members in one branch, activity {built.activity_id} open "
        f"(warm-up activity {built.warmup_activity_id}) in {built.build_s:.1f}s")
    return built


# ---------------------------------------------------------------- the server


@dataclass
class Server:
    """The running server: where it answers and its process id (for py-spy)."""

    base: str
    pid: int


@contextmanager
def server(url: str, secret: str, rotate_s: int | None, pool_size: int | None,
           log_file: TextIO) -> Iterator[Server]:
    """`uvicorn app.main:app` (one worker) against the database; stopped on the way out."""
    env = {
        "DATABASE_URL": url,
        "APP_ENV": "prod",
        "SECRET_KEY": secret,
        "EMBEDDED_WORKER": "false",
        "LOG_LEVEL": "WARNING",
    }
    if rotate_s is not None:
        env["CHECKIN_QR_ROTATE_S"] = str(rotate_s)
    if pool_size is not None:
        env["DB_POOL_SIZE"] = str(pool_size)
    with uvicorn_server(env, log_file) as (base, pid):
        yield Server(base, pid)


# ---------------------------------------------------------------- timed part


class Screen:
    """The room screen: polls the screen state as the secretary and shows the current token.

    With `poll_s` 0 it does not poll, and the token is computed locally from the shared secret
    (what the screen would show), for runs that want the check-ins alone on the server. When
    polls fail for a whole rotation (the shown code is about to expire), scanners get the local
    token too and `fallbacks` counts them: a stuck screen should not turn a slow server into a
    run of "expired" answers that hide why it was slow.
    """

    def __init__(self, *, client: httpx.AsyncClient, activity_id: int, bearer: str,
                 secret: str, rotate_s: int, poll_s: float) -> None:
        self.client = client
        self.path = f"/api/v1/activities/{activity_id}/screen"
        self.headers = {"Authorization": f"Bearer {bearer}"}
        self.activity_id, self.secret, self.rotate_s = activity_id, secret, rotate_s
        self.poll_s = poll_s
        self.shown = ""
        self.windows: set[str] = set()
        self.latencies: list[float] = []
        self.failures = 0
        self.fallbacks = 0
        self.shown_at = 0.0  # time.monotonic() of the last good poll

    @property
    def token(self) -> str:
        if self.poll_s > 0 and time.monotonic() - self.shown_at < self.rotate_s:
            return self.shown
        self.fallbacks += self.poll_s > 0
        return current_token(secret=self.secret, activity_id=self.activity_id, now=utcnow(),
                             rotate_s=self.rotate_s)

    async def poll(self) -> float:
        """One poll; returns how long the page would wait before the next one (s)."""
        started = time.perf_counter()
        try:
            response = await self.client.get(self.path, headers=self.headers)
        except httpx.HTTPError as exc:
            self.failures += 1
            log(f"screen poll failed: {type(exc).__name__}: {exc}")
            return 5.0
        self.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            self.failures += 1
            log(f"screen poll answered {response.status_code}: {response.text[:200]}")
            return 5.0
        state = response.json()
        self.shown = parse_qs(urlsplit(state["checkin_url"]).query)["t"][0]
        self.shown_at = time.monotonic()
        self.windows.add(self.shown.split(".")[1])
        return min(self.poll_s, state["refresh_in_ms"] / 1000)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(await self.poll())

    @asynccontextmanager
    async def showing(self) -> AsyncIterator[Screen]:
        """The screen is up (it has a token) and keeps polling until the block ends."""
        if self.poll_s <= 0:
            yield self
            return
        await self.poll()
        if not self.shown:
            log("the room screen has no code yet: scanners use the local token meanwhile")
        poller = asyncio.create_task(self.run())
        try:
            yield self
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller


@dataclass
class Run:
    """What one batch of requests measured."""

    latencies: list[float] = field(default_factory=list)
    first_sent: float = 0.0
    last_answer: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    created: int = 0
    not_created: int = 0
    skipped: int = 0  # not sent: the phase was abandoned after too many failures
    samples: list[str] = field(default_factory=list)  # the first few unexpected answers

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    @property
    def errors(self) -> int:
        return self.non_200 + self.transport_errors + self.skipped

    def figures(self) -> dict[str, float]:
        """Latencies of every answer; the rate counts 200 answers only."""
        return figures(self.latencies, self.statuses.get(200, 0),
                       self.last_answer - self.first_sent)

    def note(self, sample: str) -> None:
        if len(self.samples) < 3:
            self.samples.append(sample)


@dataclass(frozen=True)
class Job:
    """One scan: who, with their bearer session."""

    member: Member
    headers: dict[str, str]


def jobs_for(members: Sequence[Member], secret: str) -> list[Job]:
    """A session per member, issued as the DingTalk login would (before the timed part)."""
    return [Job(m, {"Authorization": "Bearer " + issue_session(
        secret=secret, person_id=m.person_id, platform="dingtalk")}) for m in members]


Request = Callable[[httpx.AsyncClient, Any], Awaitable[httpx.Response]]
Check = Callable[[Run, Any, httpx.Response], None]


async def drive(clients: Sequence[httpx.AsyncClient], items: Sequence[Any], send: Request,
                check: Check, what: str, max_failures: int) -> Run:
    """Send one request per item, each client taking the next item when its answer is in.

    After `max_failures` failed requests (0: never) the rest are skipped: a server that stopped
    answering would otherwise hold the run for a request timeout per item.
    """
    run = Run()
    queue = iter(items)
    failures = 0

    async def lane(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for item in queue:
            if max_failures and failures >= max_failures:
                run.skipped += 1
                continue
            started = time.perf_counter()
            try:
                response = await send(client, item)
            except httpx.HTTPError as exc:
                run.transport_errors += 1
                failures += 1
                if run.transport_errors <= 3:
                    log(f"{what} failed: {type(exc).__name__}: {exc!r}")
                continue
            answered = time.perf_counter()
            run.latencies.append(answered - started)
            run.last_answer = max(run.last_answer, answered)
            run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                failures += 1
                run.note(f"{response.status_code} {response.text[:200]}")
                continue
            check(run, item, response)

    run.first_sent = time.perf_counter()
    await asyncio.gather(*(lane(client) for client in clients))
    if run.skipped:
        log(f"{what}: gave up after {failures} failures, {run.skipped} requests not sent")
    elif run.transport_errors > 3:
        log(f"{what}: {run.transport_errors} requests failed in all")
    return run


async def healthz(clients: Sequence[httpx.AsyncClient], count: int, max_failures: int) -> Run:
    """`GET /healthz` `count` times, one in flight per client."""
    return await drive(clients, range(count), lambda client, _: client.get("/healthz"),
                       lambda run, _job, _response: None, "healthz", max_failures)


async def scan(clients: Sequence[httpx.AsyncClient], screen: Screen, jobs: Sequence[Job],
               activity_id: int, max_failures: int) -> Run:
    """Every job's check-in with the token the screen shows at the moment of sending."""

    def send(client: httpx.AsyncClient, job: Job) -> Awaitable[httpx.Response]:
        return client.post(CHECKIN_PATH, json={"token": screen.token}, headers=job.headers)

    def check(run: Run, job: Job, response: httpx.Response) -> None:
        answer = response.json()
        if answer.get("activity_id") != activity_id or answer.get("name") != job.member.name:
            run.not_created += 1  # wrong person or activity: unexpected whatever `created` says
            run.note(f"wrong answer for person {job.member.person_id}: {answer}")
        elif answer.get("created"):
            run.created += 1
        else:
            run.not_created += 1

    return await drive(clients, jobs, send, check, "check-in", max_failures)


def verify(engine: Engine, built: Built) -> dict[str, int]:
    """Rows for the activity, people with more than one, and members without a row."""
    with engine.connect() as conn:
        params = {"a": built.activity_id}
        rows = conn.execute(text("SELECT count(*) FROM check_in WHERE activity_id = :a"),
                            params).scalar_one()
        duplicates = conn.execute(text(
            "SELECT count(*) FROM (SELECT person_id FROM check_in WHERE activity_id = :a "
            "GROUP BY person_id HAVING count(*) > 1) AS twice"), params).scalar_one()
        people = set(conn.execute(text("SELECT person_id FROM check_in WHERE activity_id = :a"),
                                  params).scalars())
    missing = sum(1 for m in built.members if m.person_id not in people)
    return {"rows": rows, "duplicates": duplicates, "missing": missing}


@dataclass
class Measured:
    """Everything the timed part saw."""

    ceiling: Run
    burst: Run
    repeat: Run
    screen: Screen
    ceiling_after: Run
    warmup_errors: int = 0


async def measure(srv: Server, built: Built, secret: str, rotate_s: int,
                  args: argparse.Namespace, rng: random.Random) -> Measured:
    """Warm-up, the healthz ceiling, the burst and the repeats, all on the same server."""
    secretary = issue_session(secret=secret, person_id=built.secretary_id, platform="dingtalk")
    order = list(built.members)
    rng.shuffle(order)
    jobs = jobs_for(order, secret)
    again = jobs_for(rng.sample(built.members, min(args.repeats, len(built.members))), secret)
    warm = jobs_for(built.members[: args.warmup], secret)

    def screen_for(client: httpx.AsyncClient, activity_id: int) -> Screen:
        return Screen(client=client, activity_id=activity_id, bearer=secretary, secret=secret,
                      rotate_s=rotate_s, poll_s=args.screen_poll_s)

    give_up = args.max_failures
    async with lanes(srv.base, args.concurrency + 1, args.request_timeout) as clients:
        phones, screen_client = clients[:-1], clients[-1]
        warmup_errors = 0
        if args.warmup:
            # Opens every client's connection, and runs the check-in path once per client.
            async with screen_for(screen_client, built.warmup_activity_id).showing() as warm_screen:
                run = await scan(phones, warm_screen, warm, built.warmup_activity_id, give_up)
            health = await healthz(phones, max(args.warmup, len(phones)), give_up)
            warmup_errors = run.errors + health.errors
            log(f"warm-up: {len(warm)} check-ins into activity {built.warmup_activity_id} "
                f"and {max(args.warmup, len(phones))} healthz ({warmup_errors} failed)")
        count = len(built.members)
        log(f"timing {count:,} GET /healthz at concurrency {len(phones)}")
        ceiling = await healthz(phones, count, give_up)
        log(f"healthz: {ceiling.figures()}")

        log(f"timing {len(jobs):,} check-ins at concurrency {len(phones)} "
            f"(server pid {srv.pid})")
        screen = screen_for(screen_client, built.activity_id)
        async with screen.showing():
            burst = await scan(phones, screen, jobs, built.activity_id, give_up)
            log(f"check-ins: {burst.figures()}; created {burst.created}, statuses "
                f"{burst.statuses}, screen polls {len(screen.latencies)} over "
                f"{len(screen.windows)} code windows")
            for sample in burst.samples:
                log(f"unexpected answer: {sample}")
            repeat = await scan(phones, screen, again, built.activity_id, give_up)
        log(f"repeats: {repeat.figures()}; created=false {repeat.not_created}, "
            f"created=true {repeat.created}, statuses {repeat.statuses}")
        for sample in repeat.samples:
            log(f"unexpected repeat answer: {sample}")
        # Again after the burst: far from the first figure means the machine was busy.
        ceiling_after = await healthz(phones, count, give_up)
        log(f"healthz after: {ceiling_after.figures()}")
    return Measured(ceiling, burst, repeat, screen, ceiling_after, warmup_errors)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pg", action="store_true",
                       help=f"a fresh database partypoints_bench_checkin_<pid> on {PG_SERVER}, "
                            "dropped at the end (the default)")
    where.add_argument("--sqlite", action="store_true",
                       help="a SQLite file in a temporary folder, removed at the end")
    where.add_argument("--database-url", help="an existing, empty database (not dropped)")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200,
                        help="members already in who scan again (created=false), after the burst")
    parser.add_argument("--warmup", type=int, default=64,
                        help="untimed check-ins (into an activity of their own) and healthz calls")
    parser.add_argument("--rotate-s", type=int,
                        help="CHECKIN_QR_ROTATE_S for the server (default: its own, "
                             f"{ROTATE_S_DEFAULT} s)")
    parser.add_argument("--db-pool-size", type=int,
                        help="DB_POOL_SIZE for the server (default: its own, 40; PostgreSQL "
                             "only, the SQLite engine ignores it)")
    parser.add_argument("--screen-poll-s", type=float, default=SCREEN_POLL_MAX_S,
                        help="how often the room screen is polled for the token (default 3, as "
                             "the page); 0: no polling, tokens computed from the secret")
    parser.add_argument("--request-timeout", type=float, default=40.0,
                        help="seconds a request may take (default 40: longer than the server's "
                             "30 s wait for a pooled connection, so that failure is answered)")
    parser.add_argument("--max-failures", type=int, default=200,
                        help="give up a phase after this many failed requests (0: never)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--server-log", metavar="PATH",
                        help="keep the server's output in this file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database or file")
    args = parser.parse_args(argv)
    if args.members < 1 or args.concurrency < 1 or args.repeats < 0 or args.warmup < 0:
        parser.error("need at least 1 member and concurrency 1; counts cannot be negative")
    if args.warmup > args.members:
        parser.error("--warmup cannot exceed --members (warm-up scans use members)")
    if args.rotate_s is not None and not 5 <= args.rotate_s <= 600:
        parser.error("--rotate-s must be between 5 and 600, as the server accepts")
    return args


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    engine = make_engine(url, pool_size=2)
    try:
        built = setup(engine, args)
        dialect = engine.dialect.name
        secret = secrets.token_urlsafe(32)
        rotate_s = args.rotate_s or ROTATE_S_DEFAULT
        with log_file(args.server_log) as server_log:
            try:
                with server(url, secret, args.rotate_s, args.db_pool_size, server_log) as srv:
                    measured = asyncio.run(measure(srv, built, secret, rotate_s, args, rng))
            finally:
                server_log.seek(0)
                lines = server_log.read().splitlines()
        checks = verify(engine, built)
    finally:
        engine.dispose()
    problems = [ln for ln in lines if "Traceback" in ln or " ERROR" in ln or "WARNING" in ln]
    # The distinct exception lines say more than ten "Traceback" headers.
    distinct = dict.fromkeys(ln for ln in lines if ln and not ln.startswith(" ")
                             and ("Error" in ln or "Exception" in ln))
    for line in list(distinct)[:10]:
        log(f"server: {line[:300]}")
    pool_timeouts = sum("QueuePool limit" in ln for ln in lines)
    if pool_timeouts:
        log(f"server: {pool_timeouts} requests waited 30 s for a pooled connection and failed: "
            "requests in flight each held one and waited for another")
    log(f"database: {checks}")
    burst, repeat, screen = measured.burst, measured.repeat, measured.screen
    checkins, ceiling, repeats = burst.figures(), measured.ceiling.figures(), repeat.figures()
    ratio = checkins["per_s"] / ceiling["per_s"] if ceiling["per_s"] else 0.0
    return {
        "benchmark": "checkin_burst",
        "db": dialect,
        "members": len(built.members),
        "concurrency": args.concurrency,
        "checkins_per_s": checkins["per_s"],
        "p50_ms": checkins["p50_ms"],
        "p99_ms": checkins["p99_ms"],
        # Non-200 answers and transport failures: burst, repeats and the healthz ceiling.
        "errors": burst.errors + repeat.errors + measured.ceiling.errors,
        "duplicates": checks["duplicates"],
        "rows": checks["rows"],
        "ceiling_healthz_per_s": ceiling["per_s"],
        "ceiling_p50_ms": ceiling["p50_ms"],
        "ceiling_p99_ms": ceiling["p99_ms"],
        "ratio": round(ratio, 3),
        "target": {"ratio": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
        "targets_met": {"ratio": ratio >= TARGET_RATIO,
                        "p99_ms": checkins["p99_ms"] <= TARGET_P99_MS},
        "created": burst.created,
        "not_created": burst.not_created,
        "not_sent": burst.skipped,
        "missing": checks["missing"],
        "statuses": {str(k): v for k, v in sorted(burst.statuses.items())},
        "repeat": {"requests": len(repeat.latencies) + repeat.transport_errors + repeat.skipped,
                   "created_false": repeat.not_created, "created_true": repeat.created,
                   "errors": repeat.errors, **(repeats if repeat.latencies else {})},
        "screen": {"poll_s": args.screen_poll_s, "polls": len(screen.latencies),
                   "failures": screen.failures, "fallbacks": screen.fallbacks,
                   "code_windows": len(screen.windows),
                   "p50_ms": round(percentile(screen.latencies, 0.5) * 1000, 2)
                   if screen.latencies else None},
        "warmup_errors": measured.warmup_errors,
        "rotate_s": rotate_s,
        "db_pool_size": args.db_pool_size,
        "server_log_problems": len(problems),
        "pool_timeouts": pool_timeouts,
        "ceiling_after_healthz_per_s": measured.ceiling_after.figures()["per_s"],
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "revision": revision(),
        "seed": args.seed,
    }


def revision() -> str:
    """The commit the server ran, `-dirty` when the working tree differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


@contextmanager
def log_file(path: str | None) -> Iterator[TextIO]:
    """Where the server's output goes: `--server-log PATH` (kept), or a temporary file."""
    if path:
        with open(path, "w+", encoding="utf-8") as kept:
            yield kept
        return
    with tempfile.TemporaryFile("w+", prefix="partypoints_checkin_server_") as temporary:
        yield temporary


def failed(result: dict[str, Any]) -> bool:
    """Whether the run found a fault (not a missed target)."""
    repeat = result["repeat"]
    return bool(
        result["errors"] or result["duplicates"] or result["missing"]
        or result["rows"] != result["members"] or result["created"] != result["members"]
        or result["not_created"] or repeat.get("created_true")
        or repeat.get("created_false", 0) != repeat["requests"] or result["screen"]["failures"]
    )


def _stop(signum: int, _frame: Any) -> None:
    # SIGTERM and SIGHUP unwind like Ctrl-C: the server is stopped and the database dropped.
    log(f"signal {signum}: stopping the server and removing the scratch database")
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    if not args.sqlite and not args.database_url:
        require_postgres()
    with scratch_database(url=args.database_url, postgres=not args.sqlite,
                          name="partypoints_bench_checkin", keep=args.keep) as url:
        result = run(args, url)
    print(json.dumps(result, ensure_ascii=False))
    return 1 if failed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
