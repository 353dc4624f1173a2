"""`partypoints wecom-aibot`: the long connection answers in groups and delivers WeCom posts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.db import write_session
from app.main import wecom_aibot_runner
from app.models import ChatGroup, Platform
from app.services import orgs, outbox
from app.services.notices import Notice
from bot.fakes.wecom import FakeWeCom
from tests.chat import conformance as suite
from tests.chat import wecom_drivers as wd


@pytest.fixture
def fake():
    with FakeWeCom.running(**wd.fake_options()) as fake:
        yield fake


def test_the_runner_answers_and_delivers_through_the_connection(fake, db, db_url):
    suite.seed_world(db, datetime.now(UTC))
    wd.move_people_to_wecom(db, fake)
    with write_session(db) as s:
        branch = orgs.find_by_path_or_name(s, suite.BRANCH)
        s.add(ChatGroup(platform=Platform.WECOM, chat_id="wrg-runner", name="支部群",
                        organization_id=branch.id))
    settings = Settings(_env_file=None, database_url=db_url, wecom_aibot_mode="ws").model_copy(
        update=wd.settings_update(fake))
    with httpx.Client() as http:
        connection, worker = wecom_aibot_runner(settings, engine=db, http=http,
                                                backoff_base_s=0.05)
        thread = threading.Thread(target=connection.run_forever, daemon=True)
        thread.start()
        worker.start(every_s=0.2)
        try:
            assert connection.wait_connected(10)
            req_id = fake.push_aibot_message(from_user=suite.MEMBER, content="/我的积分",
                                             chat_id="wrg-runner")
            (answer,) = fake.wait_responded(req_id)
            assert "合计" in answer.text and f"<@{suite.MEMBER}>" in answer.text
            with write_session(db) as s:
                outbox.enqueue(session=s, kind="notice", period="p1", platform="wecom",
                               target="chat:wrg-runner", payload=Notice("支部通知").to_payload())
            worker.kick()
            FakeWeCom.wait_for(lambda: any(m.kind == "aibot_send" for m in fake.sent),
                               what="the post over the long connection")
        finally:
            worker.stop()
            connection.stop()
            thread.join(timeout=5)
    (post,) = [m for m in fake.sent if m.kind == "aibot_send"]
    assert post.target == "wrg-runner" and post.text == "支部通知"


def test_the_command_needs_the_bot_credentials(settings_env):
    result = CliRunner().invoke(cli, ["wecom-aibot"])
    assert result.exit_code == 2
    assert "WECOM_AIBOT_ID" in result.output
