"""The kill test: SIGKILL the delivery process midway through a fan-out to 300 groups, restart it.

Every group must end with exactly one board, except at most the rows that were `sending` at the
kill (a post may have reached the platform before its row was settled), and none may be lost.
Half the groups post through their own custom robot (some signed), half through the app's
group-message API, whose lane is paced so that the fan-out lasts a few seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from app.db import read_session, write_session
from app.models import ChatGroup, OutboxMessage, OutboxStatus
from app.services import outbox
from app.services.notices import Notice
from bot.fakes.dingtalk import FakeDingTalk
from tests.factories import build_org

GROUPS = 300
BATCH = 50  # the worker's claim size
CLIENT_ID = "dingkillclient"
SECRET = "kill-secret"
PARTYPOINTS = Path(sys.executable).with_name("partypoints")


def seed(db: Engine, fake: FakeDingTalk) -> dict[str, str]:
    """300 bound groups and one queued board each; robot token -> chat id for the robot half."""
    robots: dict[str, str] = {}
    with write_session(db) as s:
        branch_id = build_org(s, scheme=None, members=0).branches[0].id
        assert branch_id is not None
        for n in range(GROUPS):
            chat_id = f"cid-kill-{n:03d}"
            webhook = secret = None
            if n % 2 == 0:
                token = f"tok-{n:03d}"
                secret = f"SEC{n:03d}" if n % 4 == 0 else None
                webhook = fake.add_custom_robot(token, secret=secret)
                robots[token] = chat_id
            else:
                fake.add_group(chat_id)
            s.add(
                ChatGroup(
                    platform="dingtalk",
                    chat_id=chat_id,
                    name=f"第{n}党支部",
                    organization_id=branch_id,
                    robot_webhook=webhook,
                    robot_secret=secret,
                )
            )
        for n in range(GROUPS):
            notice = Notice(
                f"## 第{n}党支部 10月积分榜\n\n1. 张三 98 分", title="10月积分榜", markdown=True
            )
            outbox.enqueue(
                session=s,
                kind="monthly-board",
                period="2026-10",
                platform="dingtalk",
                target=f"chat:cid-kill-{n:03d}",
                payload=notice.to_payload(),
            )
    return robots


def boards(fake: FakeDingTalk, robots: dict[str, str]) -> Counter[str]:
    """Boards the fake received, per chat id."""
    counts: Counter[str] = Counter()
    for message in fake.sent:
        if message.kind == "group":
            counts[str(message.conversation_id)] += 1
        elif message.kind == "custom":
            counts[robots[str(message.target)]] += 1
    return counts


def status_counts(db: Engine) -> dict[str, int]:
    with read_session(db) as s:
        rows = s.exec(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return {str(status): count for status, count in rows}


def start_deliver(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [str(PARTYPOINTS), "outbox", "deliver"],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_until(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; delivery log:\n{log.read_text()[-4000:]}")
        time.sleep(0.005)


def test_sigkill_midway_loses_nothing_and_duplicates_at_most_the_rows_in_flight(
    db, db_url, tmp_path
):
    with FakeDingTalk.running(client_id=CLIENT_ID, client_secret=SECRET) as fake:
        robots = seed(db, fake)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": db_url,
            "APP_ENV": "dev",
            "LOG_LEVEL": "INFO",
            "DINGTALK_CLIENT_ID": CLIENT_ID,
            "DINGTALK_CLIENT_SECRET": SECRET,
            "DINGTALK_API_BASE": fake.base_url,
            "DINGTALK_OAPI_BASE": fake.base_url,
            # 20 a second through the app: its 150 posts take about 7 s.
            "DELIVERY_APP_PER_MIN": "1200",
            # Rows left `sending` by the killed process are taken again 3 s later.
            "DELIVERY_LEASE_S": "3",
        }
        log = tmp_path / "deliver.log"
        first = start_deliver(env, tmp_path, log)
        try:
            wait_until(lambda: len(fake.sent) >= 100, 60, "100 boards at the fake", log)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        arrived_at_kill = len(fake.sent)
        with read_session(db) as s:
            in_flight = {
                row.target.removeprefix("chat:")
                for row in outbox.messages(session=s, status=OutboxStatus.SENDING)
            }
        before_restart = status_counts(db)
        assert 0 < arrived_at_kill < GROUPS, "the kill did not land midway"

        second = start_deliver(env, tmp_path, log)
        try:
            wait_until(
                lambda: status_counts(db).get("sent", 0) == GROUPS,
                90,
                "every row sent after the restart",
                log,
            )
            second.send_signal(signal.SIGTERM)  # a graceful stop
            assert second.wait(20) == 0, log.read_text()[-4000:]
        finally:
            if second.poll() is None:
                second.kill()
        per_group = boards(fake, robots)

    duplicates = {chat: n for chat, n in per_group.items() if n > 1}
    print(
        f"\nkill test: {arrived_at_kill} boards had arrived at SIGKILL; rows sending at the kill:"
        f" {len(in_flight)}; duplicated groups: {len(duplicates)}; statuses at the kill: "
        f"{before_restart}"
    )
    chats = {f"cid-kill-{n:03d}" for n in range(GROUPS)}
    assert set(per_group) == chats, f"lost: {sorted(chats - set(per_group))}"
    assert all(n <= 2 for n in per_group.values())
    # A duplicate can only be a row that was in flight when the process died.
    assert set(duplicates) <= in_flight
    assert len(in_flight) <= BATCH
    assert status_counts(db) == {"sent": GROUPS}
    text = log.read_text()
    assert "claimed again" in text or not in_flight
    assert re.search(r"已发送 \d+/\d+", text)  # fan-out progress in the log
    assert "HTTP Request" not in text  # one line per post would drown it
