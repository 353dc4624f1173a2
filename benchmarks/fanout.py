"""Fan-out benchmark: 5,000 groups, each with its own custom robot, against the fake DingTalk.

Every group gets `--posts-per-robot` posts through its own robot (DingTalk custom robot: 20 a
sliding minute, 10-minute lockout after the 21st). The fake enforces that limit; the worker's
limiter and the fake run on one virtual clock, which stands still while the worker sends and
jumps ahead whenever the worker waits for a slot: time is compressed to what the limits need.
The figures are the achieved rate against the allowed rate (20 a minute per robot) in that
business time, the fake's "too fast" answers (130101, violations), dead rows, and the wall-clock
throughput of the whole path (claim, HTTP to the fake, settle).

Progress goes to stderr; stdout gets exactly one JSON line. The exit status is 1 when a post was
refused as too fast, died, was lost or duplicated, or any robot's window held more than 20.

    .venv/bin/python benchmarks/fanout.py                  # SQLite, 5,000 robots x 40 posts
    .venv/bin/python benchmarks/fanout.py --pg             # the same on PostgreSQL
    .venv/bin/python benchmarks/fanout.py --robots 500     # quick check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Runnable as `python benchmarks/fanout.py` from the repository root or anywhere else.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

from app.db import make_engine, write_session
from app.domain.vocab import OrgKind
from app.main import dingtalk_robot_sender
from app.migrate import upgrade
from app.models import ChatGroup, OutboxMessage, OutboxStatus
from app.services import orgs
from app.services.notices import Notice
from benchmarks.common import PG_SERVER, log, scratch_database
from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.fakes.dingtalk import ROBOT_RATE_PER_MIN, FakeDingTalk
from bot.outbox_worker import RATE_LIMIT_CODES, Limits, OutboxWorker, Round

CLIENT_ID = "dingbenchclient"
CLIENT_SECRET = "bench-secret"
# Business time starts here; the virtual clock only moves when the worker waits.
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai on the 1st
WINDOW_MS = 60_000
INSERT_CHUNK = 5_000


class VirtualClock:
    """Business time shared by the fake, the DingTalk client and the worker's limiter."""

    def __init__(self, start: datetime) -> None:
        self.t = start.timestamp()
        self.waits = 0

    def time(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def advance(self, seconds: float) -> None:
        self.waits += 1
        self.t += max(0.0, seconds)


def setup(engine: Engine, fake: FakeDingTalk, args: argparse.Namespace) -> dict[str, str]:
    """Groups with their robots, and every post queued; returns robot token -> chat id."""
    upgrade(engine)
    robots: dict[str, str] = {}
    groups: list[dict[str, Any]] = []
    with write_session(engine) as session:
        committee = orgs.create_child(
            session, None, "基准测试党委", OrgKind.committee, actor_label="bench"
        )
        for n in range(args.robots):
            token = f"bench{n:05d}"
            # Half the robots sign their requests (加签), as many real ones do.
            secret = f"SECbench{n:05d}" if n % 2 else None
            webhook = fake.add_custom_robot(token, secret=secret)
            chat_id = f"cidbench{n:05d}"
            robots[token] = chat_id
            groups.append(
                {
                    "platform": "dingtalk",
                    "chat_id": chat_id,
                    "name": f"第{n}党支部",
                    "organization_id": committee.id,
                    "robot_webhook": webhook,
                    "robot_secret": secret,
                    "created_at": START,
                }
            )
        session.execute(insert(ChatGroup), groups)
    rows: list[dict[str, Any]] = []
    # Post-major order, as successive jobs queue them: one post to every group, then the next.
    for post in range(args.posts_per_robot):
        notice = Notice(
            f"## 11月积分榜（第{post + 1}期）\n\n1. 张三 98 分\n2. 李四 95 分\n\n支部平均 91.5 分",
            title="11月积分榜",
            markdown=True,
        ).to_payload()
        for n in range(args.robots):
            rows.append(
                {
                    "kind": "bench-board",
                    "period": f"2026-11-{post:03d}",
                    "platform": "dingtalk",
                    "target": f"chat:cidbench{n:05d}",
                    "payload": notice,
                    "status": OutboxStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": START,
                    "last_error": "",
                    "created_at": START,
                }
            )
    for start in range(0, len(rows), INSERT_CHUNK):
        with write_session(engine) as session:
            session.execute(insert(OutboxMessage), rows[start : start + INSERT_CHUNK])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE outbox_message"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return robots


def window_breaches(times_by_robot: dict[str, list[int]]) -> int:
    """Robots whose accepted posts ever put more than 20 inside one sliding minute."""
    breaches = 0
    for times in times_by_robot.values():
        times.sort()
        limit = ROBOT_RATE_PER_MIN
        if any(times[i + limit] - times[i] < WINDOW_MS for i in range(len(times) - limit)):
            breaches += 1
    return breaches


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    clock = VirtualClock(START)
    engine = make_engine(url, pool_size=4)
    try:
        with (
            FakeDingTalk.running(
                client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock.time
            ) as fake,
            httpx.Client(timeout=10) as http,
        ):
            loaded = time.perf_counter()
            robots = setup(engine, fake, args)
            load_s = time.perf_counter() - loaded
            total = args.robots * args.posts_per_robot
            log(
                f"{engine.dialect.name}: {args.robots} robots, {total} posts queued "
                f"in {load_s:.1f} s"
            )
            client = DingTalkClient(
                http=http,
                api_base=fake.base_url,
                oapi_base=fake.base_url,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                robot_code=CLIENT_ID,
                clock=clock.time,
            )
            post = dingtalk_robot_sender(client)
            refused: Counter[str] = Counter()

            def counted(hook, note):  # type: ignore[no-untyped-def]
                try:
                    post(hook, note)
                except DingTalkError as exc:
                    refused[exc.code] += 1
                    raise

            worker = OutboxWorker(
                engine=engine,
                senders={},
                robot_senders={"dingtalk": counted},
                clock=clock.now,
                batch=args.batch,
                limits=Limits(robot_per_min=20),
            )
            done = 0
            step = max(1, total // 10)

            def on_round(result: Round) -> None:
                nonlocal done
                before, done = done, done + result.sent + result.dead
                if done // step > before // step:
                    elapsed = clock.time() - START.timestamp()
                    log(
                        f"{done}/{total} settled, business time {elapsed:.0f} s, "
                        f"wall {time.perf_counter() - began:.0f} s"
                    )

            began = time.perf_counter()
            totals = worker.drain(retries=True, sleep=clock.advance, on_round=on_round)
            wall_s = time.perf_counter() - began
            accepted = [m for m in fake.sent if m.kind == "custom"]
            requests = fake.request_count("/robot/send")
    finally:
        engine_dialect = engine.dialect.name
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                ).all()
            )
        engine.dispose()
    per_robot = Counter(str(m.target) for m in accepted)
    times_by_robot: dict[str, list[int]] = defaultdict(list)
    for message in accepted:
        times_by_robot[str(message.target)].append(message.at_ms)
    first = min(m.at_ms for m in accepted) if accepted else 0
    last = max(m.at_ms for m in accepted) if accepted else 0
    business_s = (last - first) / 1000
    # Each post holds its robot's slot for a minute: n posts at the allowed rate need
    # (n / allowed - 1) minutes from the first to the last, so the span gets one minute added.
    achieved_per_min = len(accepted) / (business_s / 60 + 1)
    allowed_per_min = ROBOT_RATE_PER_MIN * args.robots
    violations = sum(n for code, n in refused.items() if code in RATE_LIMIT_CODES)
    lost = sum(1 for token in robots if per_robot[token] < args.posts_per_robot)
    duplicated = sum(1 for token in robots if per_robot[token] > args.posts_per_robot)
    breaches = window_breaches(times_by_robot)
    dead = int(statuses.get(OutboxStatus.DEAD.value, 0))
    result = {
        "benchmark": "fanout",
        "dialect": engine_dialect,
        "robots": args.robots,
        "posts_per_robot": args.posts_per_robot,
        "posts": total,
        "batch": args.batch,
        "load_s": round(load_s, 2),
        "sent": len(accepted),
        "requests": requests,
        "violations": violations,
        "refused": dict(refused),
        "dead": dead,
        "lost_robots": lost,
        "duplicated_robots": duplicated,
        "window_breaches": breaches,
        "deferrals": totals.deferred,
        "statuses": {str(k): int(v) for k, v in statuses.items()},
        "business_s": round(business_s, 3),
        "clock_jumps": clock.waits,
        "allowed_per_min": allowed_per_min,
        "achieved_per_min": round(achieved_per_min, 1),
        "ratio": round(achieved_per_min / allowed_per_min, 4),
        "target_ratio": 0.9,
        "wall_s": round(wall_s, 2),
        "posts_per_wall_s": round(len(accepted) / wall_s, 1) if wall_s else None,
    }
    result["verified"] = (
        violations == 0
        and dead == 0
        and lost == 0
        and duplicated == 0
        and breaches == 0
        and len(accepted) == total
    )
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--pg",
        action="store_true",
        help=f"a fresh database partypoints_bench_fanout_<pid> on {PG_SERVER}, dropped at the end",
    )
    where.add_argument("--database-url", help="an existing, empty database (not dropped)")
    parser.add_argument("--robots", type=int, default=5_000, help="groups, each its own robot")
    parser.add_argument(
        "--posts-per-robot",
        type=int,
        default=40,
        help="posts queued for each group (over 20 so that the limit binds)",
    )
    parser.add_argument("--batch", type=int, default=50, help="rows the worker claims at once")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database or file")
    args = parser.parse_args(argv)
    if args.robots < 1 or args.posts_per_robot < 1:
        parser.error("--robots and --posts-per-robot must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with scratch_database(url=args.database_url, postgres=args.pg,
                          name="partypoints_bench_fanout", keep=args.keep) as url:
        result = run(args, url)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
