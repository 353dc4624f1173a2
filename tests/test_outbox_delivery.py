"""Outbox delivery against the fake DingTalk: lanes and limits, failures, dead rows, leases."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import read_session, write_session
from app.models import AuditLog, ChatGroup, OutboxMessage, OutboxStatus
from app.services import outbox
from app.services.notices import Notice
from bot.dingtalk.adapter import DingTalkDeliverer
from bot.dingtalk.client import DingTalkClient, DingTalkError
from bot.fakes.dingtalk import FakeDingTalk
from bot.outbox_worker import Failure, Limits, OutboxWorker, classify
from tests.factories import build_org

CLIENT_ID = "dingoutboxclient"
SECRET = "outbox-secret"
ROBOT_SECRET = "SECfakerobotsecret"

runner = CliRunner()


class Clock:
    """The business clock shared by the fake DingTalk, the client and the worker."""

    def __init__(self) -> None:
        # Real time at the start, so that the CLI's "now" (retry) is close to the fake clock.
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.t = self.start.timestamp()

    def time(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def catch_up(self) -> None:
        """Move past real time: the CLI stamped rows with it while this clock stood still."""
        self.t = max(self.t, time.time()) + 1


@dataclass
class World:
    db: Engine
    fake: FakeDingTalk
    clock: Clock
    branch_id: int
    make_worker: Callable[..., OutboxWorker]

    def group(
        self,
        chat_id: str,
        *,
        robot: str | None = None,
        secret: str | None = None,
        member: bool = True,
    ) -> None:
        """A bound group: with its own custom robot (token `robot`), or reached by the app."""
        webhook = self.fake.add_custom_robot(robot, secret=secret) if robot else None
        self.fake.add_group(chat_id, robot_member=member)
        with write_session(self.db) as s:
            s.add(
                ChatGroup(
                    platform="dingtalk",
                    chat_id=chat_id,
                    name=chat_id,
                    organization_id=self.branch_id,
                    robot_webhook=webhook,
                    robot_secret=secret,
                )
            )

    def post(
        self,
        target: str,
        period: str,
        *,
        kind: str = "monthly-board",
        text: str = "## 10月积分榜\n\n1. 张三 98 分",
    ) -> int:
        with write_session(self.db) as s:
            outbox.enqueue(
                session=s,
                kind=kind,
                period=period,
                platform="dingtalk",
                target=target,
                payload=Notice(text, title="10月积分榜", markdown=True).to_payload(),
                not_before=self.clock.now(),
            )
            row = s.exec(
                select(OutboxMessage).where(
                    OutboxMessage.kind == kind,
                    OutboxMessage.period == period,
                    OutboxMessage.target == target,
                )
            ).one()
            assert row.id is not None
            return row.id

    def rows(self, status: OutboxStatus | None = None) -> list[OutboxMessage]:
        with read_session(self.db) as s:
            return outbox.messages(session=s, status=status)

    def row(self, message_id: int) -> OutboxMessage:
        with read_session(self.db) as s:
            row = s.get(OutboxMessage, message_id)
            assert row is not None
            return row


@pytest.fixture
def world(db: Engine) -> Iterator[World]:
    clock = Clock()
    with (
        FakeDingTalk.running(client_id=CLIENT_ID, client_secret=SECRET, clock=clock.time) as fake,
        httpx.Client(timeout=5) as http,
    ):
        client = DingTalkClient(
            http=http,
            api_base=fake.base_url,
            oapi_base=fake.base_url,
            client_id=CLIENT_ID,
            client_secret=SECRET,
            robot_code=CLIENT_ID,
            clock=clock.time,
        )
        deliverer = DingTalkDeliverer(client=client, card_template_id="", clock=clock.time)

        def make_worker(**options: object) -> OutboxWorker:
            from app.main import dingtalk_robot_sender

            return OutboxWorker(
                engine=db,
                senders={"dingtalk": deliverer.notify},
                robot_senders={"dingtalk": dingtalk_robot_sender(client)},
                clock=clock.now,
                **options,
            )  # type: ignore[arg-type]

        with write_session(db) as s:
            branch_id = build_org(s, scheme=None, members=0).branches[0].id
        assert branch_id is not None
        yield World(db, fake, clock, branch_id, make_worker)


def test_fifty_posts_to_one_robot_keep_within_its_limit_and_all_arrive(world):
    world.group("cid-one", robot="tok-one", secret=ROBOT_SECRET)
    ids = [world.post("chat:cid-one", f"2026-10-{n:02d}") for n in range(50)]
    worker = world.make_worker()
    totals = worker.drain(sleep=world.clock.advance)
    assert (totals.sent, totals.dead, totals.retrying) == (50, 0, 0)
    # Every request was accepted: the limiter never let the fake answer 130101.
    assert world.fake.request_count("/robot/send") == 50
    custom = [m for m in world.fake.sent if m.kind == "custom"]
    assert len(custom) == 50 and {m.target for m in custom} == {"tok-one"}
    assert custom[0].body["msgtype"] == "markdown"
    assert "10月积分榜" in custom[0].body["markdown"]["title"]
    times = sorted(m.at_ms for m in custom)
    assert all(b - a >= 60_000 for a, b in zip(times, times[20:], strict=False))
    # 20 at once, 20 a minute later, 10 a minute after that: two windows, not more.
    elapsed = world.clock.now() - world.clock.start
    assert timedelta(minutes=2) <= elapsed < timedelta(minutes=2, seconds=10)
    rows = world.rows()
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert {r.attempts for r in rows} == {1}  # deferrals are not attempts
    assert sorted(r.id for r in rows) == sorted(ids)


def test_a_too_fast_answer_is_retried_after_the_lockout_not_dead(world, caplog):
    world.group("cid-one", robot="tok-one")
    ids = [world.post("chat:cid-one", f"p{n}") for n in range(3)]
    world.fake.inject_fault(
        "/robot/send",
        status=200,
        body={"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
    )
    worker = world.make_worker()
    with caplog.at_level(logging.WARNING):
        first = worker.run_round()
    assert (first.sent, first.retrying, first.dead, first.deferred) == (0, 1, 0, 2)
    hit = world.row(ids[0])
    assert hit.status == OutboxStatus.FAILED and hit.attempts == 1
    assert "130101" in hit.last_error and hit.last_error.startswith("rate-limited")
    # The robot is locked out for 10 minutes: the whole lane waits, the others uncounted.
    assert hit.next_attempt_at >= world.clock.start + timedelta(minutes=10)
    for other in ids[1:]:
        row = world.row(other)
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
        assert row.next_attempt_at >= world.clock.start + timedelta(minutes=10)
    world.clock.advance(300)
    assert worker.run_round().claimed == 0
    totals = worker.drain(retries=True, sleep=world.clock.advance)
    assert (totals.sent, totals.dead) == (3, 0)
    assert world.fake.request_count("/robot/send") == 4  # the refused one, then three
    assert world.row(ids[0]).attempts == 2
    assert "rate-limited" in caplog.text


def test_app_lane_posts_are_spread_and_progress_is_logged(world, caplog):
    for n in range(120):
        world.group(f"cid-{n}")
    for n in range(120):
        world.post(f"chat:cid-{n}", "2026-10")
    worker = world.make_worker(limits=Limits(app_per_min=600))
    with caplog.at_level(logging.INFO, logger="bot.outbox_worker"):
        totals = worker.drain(sleep=world.clock.advance)
    assert (totals.sent, totals.dead) == (120, 0)
    group_posts = sorted(m.at_ms for m in world.fake.sent if m.kind == "group")
    assert len(group_posts) == 120
    # 600 a minute is 10 a second: never 11 inside one second.
    assert all(b - a >= 1000 for a, b in zip(group_posts, group_posts[10:], strict=False))
    assert "已发送 100/120" in caplog.text


def test_a_permanent_error_is_dead_at_once_listed_and_sent_after_a_retry(world, settings_env):
    world.group("cid-bad", robot=None)
    with write_session(world.db) as s:
        group = s.exec(select(ChatGroup).where(ChatGroup.chat_id == "cid-bad")).one()
        group.robot_webhook = f"{world.fake.base_url}/robot/send?access_token=nosuchtoken"
    message_id = world.post("chat:cid-bad", "2026-10")
    worker = world.make_worker()
    result = worker.run_round()
    assert (result.sent, result.dead) == (0, 1)
    row = world.row(message_id)
    assert (row.status, row.attempts) == (OutboxStatus.DEAD, 1)
    assert row.last_error.startswith("permanent") and "300005" in row.last_error
    assert "nosuchtoken" not in row.last_error

    listed = runner.invoke(cli, ["outbox", "list", "--status", "dead"])
    assert listed.exit_code == 0, listed.output
    assert str(message_id) in listed.output and "300005" in listed.output
    assert "已放弃" in listed.output
    assert "没有符合条件" in runner.invoke(cli, ["outbox", "list", "--status", "sent"]).output

    # The operator fixes the robot and sends the post again.
    good = world.fake.add_custom_robot("tok-good")
    fixed = runner.invoke(cli, ["group", "robot", "cid-bad", "--webhook", good])
    assert fixed.exit_code == 0, fixed.output
    assert "tok-good" not in fixed.output
    retried = runner.invoke(cli, ["outbox", "retry", str(message_id)])
    assert retried.exit_code == 0, retried.output
    row = world.row(message_id)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    world.clock.catch_up()
    assert worker.run_round().sent == 1
    assert world.row(message_id).status == OutboxStatus.SENT
    assert [m.target for m in world.fake.sent] == ["tok-good"]
    again = runner.invoke(cli, ["outbox", "retry", str(message_id)])
    assert again.exit_code == 1 and "只有 dead 或 failed" in again.output
    with read_session(world.db) as s:
        audits = s.exec(
            select(AuditLog).where(AuditLog.entity.in_(["outbox_message", "chat_group"]))
        ).all()
    assert {(a.action, a.entity) for a in audits} == {
        ("retry", "outbox_message"),
        ("set_robot", "chat_group"),
    }
    assert all("tok-good" not in str(a.after) for a in audits)


def test_retry_all_dead_and_a_robot_not_in_the_group(world, settings_env):
    world.group("cid-left", member=False)
    ids = [world.post("chat:cid-left", p) for p in ("a", "b")]
    world.make_worker().run_round()
    for message_id in ids:
        row = world.row(message_id)
        assert row.status == OutboxStatus.DEAD and "robot.notInGroup" in row.last_error
    world.fake.add_group("cid-left", robot_member=True)  # someone adds the robot back
    result = runner.invoke(cli, ["outbox", "retry", "--all-dead"])
    assert result.exit_code == 0 and "2" in result.output
    world.clock.catch_up()
    assert world.make_worker().run_round().sent == 2
    assert "没有已放弃" in runner.invoke(cli, ["outbox", "retry", "--all-dead"]).output


def test_network_errors_and_5xx_back_off_and_die_after_the_last_attempt(world):
    world.group("cid-down", robot=None)
    with write_session(world.db) as s:
        group = s.exec(select(ChatGroup).where(ChatGroup.chat_id == "cid-down")).one()
        group.robot_webhook = "http://127.0.0.1:9/robot/send?access_token=x"  # nobody listens
    world.group("cid-5xx")
    down = world.post("chat:cid-down", "2026-10")
    busy = world.post("chat:cid-5xx", "2026-10")
    world.fake.inject_fault("/v1.0/robot/groupMessages/send", status=503, times=1)
    worker = world.make_worker(max_attempts=3)
    first = worker.run_round()
    assert (first.retrying, first.dead) == (2, 0)
    assert world.row(down).last_error.startswith("retryable")
    assert "503" in world.row(busy).last_error
    worker.drain(retries=True, sleep=world.clock.advance)
    assert world.row(busy).status == OutboxStatus.SENT
    dead = world.row(down)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 3)
    assert "network" in dead.last_error


def test_a_row_left_sending_is_claimed_again_after_the_lease(world):
    world.group("cid-one")
    message_id = world.post("chat:cid-one", "2026-10")
    with write_session(world.db) as s:  # a worker claims it, then dies
        (claimed,) = outbox.claim_due(session=s, now=world.clock.now(), lease_s=300)
    assert claimed.status == OutboxStatus.SENDING
    worker = world.make_worker(lease_s=300)
    world.clock.advance(299)
    assert worker.run_round().claimed == 0
    world.clock.advance(1)
    assert worker.run_round().sent == 1
    row = world.row(message_id)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert len(world.fake.sent) == 1


def test_a_stop_hands_back_the_claimed_rows_not_yet_sent(world):
    world.group("cid-one")
    ids = [world.post("chat:cid-one", f"p{n}") for n in range(5)]
    worker = world.make_worker()
    send = worker.senders["dingtalk"]

    def send_then_stop(note):
        send(note)
        worker.request_stop()

    worker.senders["dingtalk"] = send_then_stop
    result = worker.run_round()
    assert (result.sent, result.released) == (1, 4)
    rows = [world.row(i) for i in ids]
    assert sorted((r.status, r.attempts) for r in rows) == sorted(
        [(OutboxStatus.SENT, 1)] + [(OutboxStatus.PENDING, 0)] * 4
    )
    assert all(
        r.next_attempt_at <= world.clock.now() for r in rows if r.status == OutboxStatus.PENDING
    )


def test_unreadable_rows_die_and_other_platforms_are_left_alone(world):
    with write_session(world.db) as s:
        outbox.enqueue(
            session=s,
            kind="x",
            period="1",
            platform="dingtalk",
            target="user:u1",
            payload={"no": "text"},
            not_before=world.clock.now(),
        )
        outbox.enqueue(
            session=s,
            kind="x",
            period="1",
            platform="wecom",
            target="user:u2",
            payload={"text": "hi"},
            not_before=world.clock.now(),
        )
    result = world.make_worker().run_round()
    assert (result.claimed, result.dead) == (1, 1)
    by_platform = {r.platform: r for r in world.rows()}
    assert "unreadable payload" in by_platform["dingtalk"].last_error
    assert by_platform["wecom"].status == OutboxStatus.PENDING  # no WeCom sender here


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DingTalkError(code="130101", message="send too fast", status=200), Failure.RATE_LIMITED),
        (
            DingTalkError(code="45009", message="api freq out of limit", status=200),
            Failure.RATE_LIMITED,
        ),
        (
            DingTalkError(code="Forbidden.AccessDenied.QpsLimitForApi", message="", status=403),
            Failure.RATE_LIMITED,
        ),
        (DingTalkError(code="throttled", message="", status=429), Failure.RATE_LIMITED),
        (DingTalkError(code="network", message="ConnectError", status=None), Failure.RETRYABLE),
        (httpx.ConnectTimeout("timed out"), Failure.RETRYABLE),
        (DingTalkError(code="ServiceUnavailable", message="", status=503), Failure.RETRYABLE),
        (DingTalkError(code="-1", message="系统繁忙", status=200), Failure.RETRYABLE),
        (DingTalkError(code="300005", message="token is not exist", status=200), Failure.PERMANENT),
        (
            DingTalkError(code="invalidParameter.msgKey.invalid", message="", status=400),
            Failure.PERMANENT,
        ),
        (DingTalkError(code="robot.notInGroup", message="", status=400), Failure.PERMANENT),
        (RuntimeError("a bug"), Failure.RETRYABLE),
    ],
)
def test_classify(error, expected):
    assert classify(error) is expected


def test_deliver_once_drains_the_queue_and_reports(world, settings_env, monkeypatch):
    from app.config import get_settings

    world.clock.t = datetime.now(UTC).timestamp()  # this command runs on real time
    world.group("cid-robot", robot="tok-robot")
    world.group("cid-app")
    world.group("cid-gone", robot=None)
    with write_session(world.db) as s:
        group = s.exec(select(ChatGroup).where(ChatGroup.chat_id == "cid-gone")).one()
        group.robot_webhook = f"{world.fake.base_url}/robot/send?access_token=gone"
    for chat in ("cid-robot", "cid-app", "cid-gone"):
        world.post(f"chat:{chat}", "2026-10")
    for key, value in {
        "DINGTALK_CLIENT_ID": CLIENT_ID,
        "DINGTALK_CLIENT_SECRET": SECRET,
        "DINGTALK_API_BASE": world.fake.base_url,
        "DINGTALK_OAPI_BASE": world.fake.base_url,
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    result = runner.invoke(cli, ["outbox", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    assert "已发送 2 条，放弃 1 条" in result.output
    assert "outbox list --status dead" in result.output
    assert {m.kind for m in world.fake.sent} == {"custom", "group"}
    assert {r.status for r in world.rows()} == {OutboxStatus.SENT, OutboxStatus.DEAD}
