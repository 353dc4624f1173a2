"""Stream mode end to end: the StreamClient against the fake DingTalk gateway on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from bot.dingtalk.client import DingTalkClient
from bot.dingtalk.stream import BOT_TOPIC, CARD_TOPIC, StreamClient
from bot.fakes.dingtalk import FakeDingTalk

CLIENT_ID = "dingstreamapp"
CLIENT_SECRET = "stream-secret-001"
GROUP = "cidStreamGroup=="
REDELIVERY_S = 0.3


class Recorder:
    """Handlers that record what they got, optionally blocking until released."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.cards: list[dict] = []
        self.release = threading.Event()
        self.release.set()
        self.running = 0
        self.max_running = 0
        self.card_response: Callable[[dict], dict | None] = lambda data: None
        self._lock = threading.Lock()

    def on_bot_message(self, data: dict) -> None:
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            self.release.wait(5)
            with self._lock:
                self.messages.append(data)
        finally:
            with self._lock:
                self.running -= 1

    def on_card_callback(self, data: dict) -> dict | None:
        self.cards.append(data)
        return self.card_response(data)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDingTalk]:
    with FakeDingTalk.running(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redelivery_timeout_s=REDELIVERY_S
    ) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeDingTalk) -> FakeDingTalk:
    server.reset()
    server.add_group(GROUP)
    return server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextmanager
def streaming(
    fake: FakeDingTalk, recorder: Recorder, *, secret: str = CLIENT_SECRET, max_workers: int = 8
) -> Iterator[StreamClient]:
    """A StreamClient running in a thread (as the CLI runs it), stopped on exit."""
    client = StreamClient(
        http_base=fake.base_url,
        client_id=CLIENT_ID,
        client_secret=secret,
        on_bot_message=recorder.on_bot_message,
        on_card_callback=recorder.on_card_callback,
        max_workers=max_workers,
        backoff_base_s=0.01,
    )
    thread = threading.Thread(target=client.run_forever, name="stream-under-test")
    thread.start()
    try:
        yield client
    finally:
        recorder.release.set()
        client.stop()
        thread.join(5)
        assert not thread.is_alive(), "StreamClient.run_forever did not return after stop()"


@pytest.fixture
def stream(fake: FakeDingTalk, recorder: Recorder) -> Iterator[StreamClient]:
    with streaming(fake, recorder) as client:
        fake.wait_for(lambda: fake.live_connections == 1, what="the stream client to connect")
        yield client


def test_bot_frame_is_acked_before_the_handler_finishes(
    fake: FakeDingTalk, recorder: Recorder, stream: StreamClient
) -> None:
    recorder.release.clear()
    body = fake.bot_message_body(text="/我的积分", conversation_id=GROUP, sender_staff_id="u1")
    message_id = fake.push_bot_message(body)
    ack = fake.wait_acked(message_id, timeout=2)
    fake.wait_for(lambda: recorder.running == 1, what="the handler to start")
    assert recorder.messages == []  # still blocked in the handler, yet already acked
    assert ack["code"] == 200
    assert ack["headers"] == {"messageId": message_id, "contentType": "application/json"}
    assert ack["message"] == "OK"
    assert json.loads(ack["data"]) == {"response": "OK"}
    recorder.release.set()
    fake.wait_for(lambda: len(recorder.messages) == 1, what="the handler to finish")
    assert recorder.messages == [body]


def test_ping_is_echoed(fake: FakeDingTalk, stream: StreamClient) -> None:
    ack = fake.ping()
    assert ack["code"] == 200
    assert ack["data"] == ack["sent"]


def test_lost_ack_is_redelivered_and_handled_once(
    fake: FakeDingTalk, recorder: Recorder, stream: StreamClient
) -> None:
    fake.ignore_acks(1)
    message_id = fake.push_bot_message(fake.bot_message_body(text="/排行"))
    fake.wait_for(lambda: fake.acked(message_id), timeout=3, what="the redelivered frame's ack")
    assert fake.deliveries(message_id) == 2
    fake.wait_for(lambda: len(recorder.messages) == 1)
    time.sleep(REDELIVERY_S)  # room for a wrong second run to show up
    assert len(recorder.messages) == 1


def test_frames_wait_for_a_connection_and_are_redelivered_after_a_reconnect(
    fake: FakeDingTalk, recorder: Recorder
) -> None:
    message_id = fake.push_bot_message(fake.bot_message_body(text="/活动"))
    assert fake.deliveries(message_id) == 0  # nobody connected yet
    with streaming(fake, recorder):
        fake.wait_for(lambda: fake.acked(message_id), timeout=3)
        fake.wait_for(lambda: len(recorder.messages) == 1)


def test_the_fake_redelivers_an_unacked_frame(fake: FakeDingTalk) -> None:
    registration = httpx.post(
        f"{fake.base_url}/v1.0/gateway/connections/open",
        json={
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_TOPIC}],
        },
    ).json()
    url = f"{registration['endpoint']}?ticket={registration['ticket']}"
    with ws_connect(url) as ws:
        fake.wait_for(lambda: fake.live_connections == 1)
        message_id = fake.push_bot_message({"msgtype": "text", "text": {"content": " 你好"}})
        first = json.loads(ws.recv(timeout=2))
        second = json.loads(ws.recv(timeout=2))  # no ack sent: it comes again
        assert first["headers"]["messageId"] == second["headers"]["messageId"] == message_id
        assert first["type"] == "CALLBACK" and first["headers"]["topic"] == BOT_TOPIC
        assert json.loads(first["data"]) == {"msgtype": "text", "text": {"content": " 你好"}}
        ack = {"code": 200, "headers": {"messageId": message_id}, "message": "OK", "data": "{}"}
        ws.send(json.dumps(ack))
        fake.wait_for(lambda: fake.acked(message_id))
    with pytest.raises(InvalidStatus), ws_connect(url):  # a ticket opens one connection only
        pass


def test_card_click_applies_the_handlers_update(
    fake: FakeDingTalk, recorder: Recorder, stream: StreamClient
) -> None:
    with httpx.Client(timeout=5) as http:
        DingTalkClient(
            http=http,
            api_base=fake.base_url,
            oapi_base=fake.base_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            robot_code=CLIENT_ID,
        ).create_card(
            out_track_id="leave-7",
            template_id="tpl.schema",
            card_param_map={"title": "请假申请", "status": "待审批"},
            open_conversation_id=GROUP,
        )

    def decide(data: dict) -> dict:
        content = json.loads(data["content"])
        action = content["cardPrivateData"]["actionIds"][0]
        status = "已批准" if action == "approve" else "已驳回"
        return {
            "cardData": {"cardParamMap": {"status": status}},
            "privateData": {data["userId"]: {"cardParamMap": {"decided": "true"}}},
            "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True},
        }

    recorder.card_response = decide
    response = fake.click_card("leave-7", "sec001", "approve", {"leave_id": "7"})
    assert response is not None
    assert response["cardData"] == {"cardParamMap": {"status": "已批准"}}
    card = fake.cards["leave-7"]
    assert card.card_param_map == {"title": "请假申请", "status": "已批准"}
    assert card.private_data == {"sec001": {"decided": "true"}}
    [data] = recorder.cards
    assert (data["outTrackId"], data["userId"], data["type"]) == (
        "leave-7",
        "sec001",
        "actionCallback",
    )
    assert json.loads(data["content"])["cardPrivateData"]["params"] == {"leave_id": "7"}


def test_failing_card_handler_acks_500_and_leaves_the_card(
    fake: FakeDingTalk, recorder: Recorder, stream: StreamClient
) -> None:
    with httpx.Client(timeout=5) as http:
        DingTalkClient(
            http=http,
            api_base=fake.base_url,
            oapi_base=fake.base_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            robot_code=CLIENT_ID,
        ).create_card(
            out_track_id="leave-8",
            template_id="tpl.schema",
            card_param_map={"status": "待审批"},
            user_id="sec001",
        )

    def boom(data: dict) -> dict:
        raise RuntimeError("database is down")

    recorder.card_response = boom
    assert fake.click_card("leave-8", "sec001", "approve") is None
    assert fake.cards["leave-8"].card_param_map == {"status": "待审批"}
    [message_id] = fake.pushed(CARD_TOPIC)
    assert fake.ack(message_id)["code"] == 500  # type: ignore[index]


def test_disconnect_makes_the_client_reconnect(
    fake: FakeDingTalk, recorder: Recorder, stream: StreamClient
) -> None:
    # The fake would close only after 5 s: the client itself closes and registers again.
    assert fake.disconnect_all(grace_s=5) == 1
    fake.wait_for(lambda: stream.connections == 2, timeout=2, what="a second connection")
    fake.wait_for(lambda: fake.live_connections == 1, what="the old connection to close")
    assert (fake.registrations, fake.connections_opened) == (2, 2)
    message_id = fake.push_bot_message(fake.bot_message_body(text="/帮助"))
    fake.wait_acked(message_id)
    fake.wait_for(lambda: len(recorder.messages) == 1)


def test_dropped_connection_is_reestablished(
    fake: FakeDingTalk, recorder: Recorder, stream: StreamClient
) -> None:
    fake.disconnect_all(graceful=False)
    fake.wait_for(lambda: fake.connections_opened == 2, what="a second connection")
    message_id = fake.push_bot_message(fake.bot_message_body())
    fake.wait_acked(message_id)


def test_refused_registration_is_retried_with_backoff(
    fake: FakeDingTalk, recorder: Recorder
) -> None:
    started = time.monotonic()
    with streaming(fake, recorder, secret="wrong"):
        fake.wait_for(lambda: fake.registrations >= 4, what="repeated registrations")
    # 0.01·(1 + 2 + 4) s at least between the first four attempts: backoff, not a hot loop.
    assert time.monotonic() - started >= 0.07
    assert fake.connections_opened == 0


def test_handlers_run_at_most_max_workers_at_once(fake: FakeDingTalk, recorder: Recorder) -> None:
    recorder.release.clear()
    with streaming(fake, recorder, max_workers=2):
        fake.wait_for(lambda: fake.live_connections == 1)
        ids = [fake.push_bot_message(fake.bot_message_body(text=f"/帮助 {n}")) for n in range(5)]
        for message_id in ids:
            fake.wait_acked(message_id, timeout=2)  # all acked while the handlers are stuck
        fake.wait_for(lambda: recorder.running == 2)
        time.sleep(0.05)
        assert recorder.max_running == 2
        recorder.release.set()
        fake.wait_for(lambda: len(recorder.messages) == 5)
    assert recorder.max_running == 2


def test_event_frames_are_acked(fake: FakeDingTalk, stream: StreamClient) -> None:
    message_id = fake.push_frame(type="EVENT", topic="chat_update_title", data={"title": "新群名"})
    ack = fake.wait_acked(message_id)
    assert ack["code"] == 200


def test_stop_before_run_returns_at_once(fake: FakeDingTalk, recorder: Recorder) -> None:
    client = StreamClient(
        http_base=fake.base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        on_bot_message=recorder.on_bot_message,
        on_card_callback=recorder.on_card_callback,
    )
    client.stop()
    client.run_forever()
    assert fake.registrations == 0
