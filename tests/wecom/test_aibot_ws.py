"""AibotConnection (the AI bot's long connection) against the fake WeCom's WebSocket server:
subscribe, callbacks in, respond and send out, reconnects, takeover and refused subscribes."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.fakes.wecom import FakeWeCom
from bot.wecom.aibot_ws import AibotConnection
from bot.wecom.client import WeComError
from tests.chat import wecom_drivers as wd

WAIT_S = 5.0
Frames = queue.Queue[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeWeCom]:
    with FakeWeCom.running(**wd.fake_options()) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeWeCom) -> Iterator[FakeWeCom]:
    server.reset()
    yield server
    server.reset()


def _connection(fake: FakeWeCom, *, secret: str = wd.AIBOT_SECRET,
                messages: Frames | None = None, events: Frames | None = None,
                **options: Any) -> AibotConnection:
    def on_message(req_id: str, body: dict[str, Any]) -> None:
        if messages is not None:
            messages.put((req_id, body))

    def on_event(req_id: str, body: dict[str, Any]) -> None:
        if events is not None:
            events.put((req_id, body))

    options = {"backoff_base_s": 0.02, "backoff_max_s": 0.2} | options
    return AibotConnection(url=fake.ws_url, bot_id=wd.AIBOT_ID, secret=secret,
                           on_message=on_message, on_event=on_event, **options)


@contextlib.contextmanager
def _running(connection: AibotConnection, *, connect: bool = True) -> Iterator[threading.Thread]:
    """run_forever in a daemon thread; always stopped and joined on the way out."""
    thread = threading.Thread(target=connection.run_forever, daemon=True, name="test-aibot")
    thread.start()
    try:
        if connect:
            assert connection.wait_connected(WAIT_S), "the AI bot did not connect"
        yield thread
    finally:
        connection.stop()
        thread.join(timeout=WAIT_S)
    assert not thread.is_alive(), "run_forever did not return after stop()"


# --------------------------------------------------------------------------- in and out


def test_a_pushed_message_is_handled_and_answered(fake: FakeWeCom) -> None:
    messages: Frames = queue.Queue()
    connection = _connection(fake, messages=messages)
    with _running(connection):
        assert connection.connected and connection.connections == 1
        assert fake.subscribes == 1
        fake.wait_for(lambda: fake.live_connections() == 1, what="a live connection")
        pushed = fake.push_aibot_message(from_user="zhangsan", content="/我的积分",
                                         chat_id="wrk1")
        req_id, body = messages.get(timeout=WAIT_S)
        assert req_id == pushed
        assert body["from"] == {"userid": "zhangsan"} and body["chatid"] == "wrk1"
        assert body["text"]["content"] == "@党员积分助手 /我的积分"
        connection.respond(req_id=req_id, markdown="**本月积分：120 分**")
        (reply,) = fake.wait_responded(req_id)
        assert (reply.kind, reply.target, reply.req_id, reply.cmd, reply.msgtype) == (
            "aibot_respond", req_id, req_id, "aibot_respond_msg", "stream")
        assert reply.body["stream"]["finish"] is True
        assert reply.body["stream"]["content"] == reply.text == "**本月积分：120 分**"
        # A req_id the platform never sent is refused with its errcode.
        with pytest.raises(WeComError) as caught:
            connection.respond(req_id="made-up", markdown="x")
        assert caught.value.code == "846605"
    assert not connection.connected
    assert [s.kind for s in fake.sent] == ["aibot_respond"]


def test_the_handler_may_respond_from_its_worker_thread(fake: FakeWeCom) -> None:
    handled = threading.Event()
    connection: AibotConnection

    def on_message(req_id: str, body: dict[str, Any]) -> None:
        try:
            connection.respond(req_id=req_id, markdown=f"收到：{body['text']['content']}")
        finally:
            handled.set()

    connection = AibotConnection(url=fake.ws_url, bot_id=wd.AIBOT_ID, secret=wd.AIBOT_SECRET,
                                 on_message=on_message, backoff_base_s=0.02)
    with _running(connection):
        pushed = fake.push_aibot_message(from_user="lisi", content="帮助")
        (reply,) = fake.wait_responded(pushed)
        assert reply.text == "收到：帮助"
        assert handled.wait(WAIT_S)


def test_events_and_failing_handlers(fake: FakeWeCom) -> None:
    events: Frames = queue.Queue()
    calls: list[str] = []

    def failing(req_id: str, body: dict[str, Any]) -> None:
        calls.append(req_id)
        raise RuntimeError("handler bug")

    connection = AibotConnection(url=fake.ws_url, bot_id=wd.AIBOT_ID, secret=wd.AIBOT_SECRET,
                                 on_message=failing,
                                 on_event=lambda req_id, body: events.put((req_id, body)),
                                 backoff_base_s=0.02)
    with _running(connection):
        first = fake.push_aibot_message(from_user="zhangsan", content="boom")
        pushed = fake.push_aibot_event(from_user="zhangsan", eventtype="enter_chat")
        req_id, body = events.get(timeout=WAIT_S)
        assert req_id == pushed and body["event"] == {"eventtype": "enter_chat"}
        fake.wait_for(lambda: calls == [first], what="the failing handler")
        # The connection survived the handler's exception.
        assert connection.connected and connection.connections == 1
        connection.send_markdown(chat_id="wrk1", content="still here")
    assert [s.kind for s in fake.sent] == ["aibot_send"]


def test_send_markdown_posts_to_a_chat(fake: FakeWeCom) -> None:
    connection = _connection(fake)
    with _running(connection):
        connection.send_markdown(chat_id="wrk-branch-1", content="**五月积分榜**\n1. 张三")
        with pytest.raises(WeComError) as caught:
            connection.send_markdown(chat_id="wrk-branch-1", content="")
        assert caught.value.code == "44004"
    (post,) = fake.sent
    assert (post.kind, post.target, post.cmd, post.msgtype) == (
        "aibot_send", "wrk-branch-1", "aibot_send_msg", "markdown")
    assert post.req_id.startswith("aibot_send_msg_")
    assert post.text == "**五月积分榜**\n1. 张三"


# --------------------------------------------------------------------------- connection life


def test_reconnects_with_backoff_after_the_connection_drops(fake: FakeWeCom) -> None:
    messages: Frames = queue.Queue()
    connection = _connection(fake, messages=messages, backoff_base_s=0.05)
    with _running(connection):
        for round_ in (2, 3):
            dropped = time.monotonic()
            assert fake.close_aibot_connections() == 1
            fake.wait_for(lambda n=round_: connection.connections == n and connection.connected,
                          what=f"connection #{round_}")
            # It waited at least the backoff base before reconnecting.
            assert time.monotonic() - dropped >= 0.05
            fake.wait_for(lambda: fake.live_connections() == 1, what="the new live connection")
            pushed = fake.push_aibot_message(from_user="zhangsan", content=f"第{round_}次")
            req_id, _ = messages.get(timeout=WAIT_S)
            assert req_id == pushed
            connection.respond(req_id=req_id, markdown=f"ok {round_}")
            assert fake.wait_responded(req_id)[0].text == f"ok {round_}"
        assert fake.subscribes == 3 and fake.requests("/aibot") == 3
        assert not connection.taken_over


def test_a_second_connection_takes_over_and_the_first_stops_for_good(fake: FakeWeCom) -> None:
    first_messages: Frames = queue.Queue()
    first_events: Frames = queue.Queue()
    second_messages: Frames = queue.Queue()
    first = _connection(fake, messages=first_messages, events=first_events)
    second = _connection(fake, messages=second_messages)
    with _running(first) as first_thread:
        fake.wait_for(lambda: fake.live_connections() == 1, what="the first connection")
        with _running(second):
            first_thread.join(timeout=WAIT_S)
            assert not first_thread.is_alive(), "the first connection did not stop"
            assert first.taken_over and not first.connected and first.connections == 1
            assert first_events.empty()  # disconnected_event is not passed on
            assert second.connected and not second.taken_over
            assert fake.live_connections() == 1
            # Its run_forever returned instead of reconnecting, which would take the bot back.
            assert fake.subscribes == 2 and fake.requests("/aibot") == 2
            assert second.connected and second.connections == 1
            assert fake.live_connections() == 1
            pushed = fake.push_aibot_message(from_user="zhangsan", content="谁在线")
            req_id, _ = second_messages.get(timeout=WAIT_S)
            assert req_id == pushed and first_messages.empty()
            with pytest.raises(WeComError) as caught:
                first.respond(req_id=req_id, markdown="x")
            assert caught.value.code == "network"
            second.respond(req_id=req_id, markdown="我在")
            assert fake.wait_responded(req_id)[0].text == "我在"


def test_a_refused_subscribe_is_retried_then_given_up(fake: FakeWeCom) -> None:
    connection = _connection(fake, secret="wrong-secret", backoff_base_s=0.01,
                             max_auth_failures=3)
    thread = threading.Thread(target=connection.run_forever, daemon=True)
    thread.start()
    try:
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), "run_forever did not give up"
    finally:
        connection.stop()
        thread.join(timeout=WAIT_S)
    assert fake.subscribes == 3 and fake.requests("/aibot") == 3
    assert connection.connections == 0 and not connection.connected
    assert not connection.taken_over and fake.live_connections() == 0


@contextlib.contextmanager
def _broken_gateway() -> Iterator[tuple[str, list[int]]]:
    """A WebSocket URL whose server answers HTTP 503, then nothing at all, in turn."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[int] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                accepted.append(len(accepted) + 1)
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    if len(accepted) % 2:
                        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\n"
                                     b"Content-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/aibot", accepted
    finally:
        done.set()
        thread.join(timeout=WAIT_S)
        listener.close()


def test_a_refused_handshake_is_retried_like_a_network_failure(fake: FakeWeCom) -> None:
    with _broken_gateway() as (url, accepted):
        connection = AibotConnection(url=url, bot_id=wd.AIBOT_ID, secret=wd.AIBOT_SECRET,
                                     on_message=lambda req_id, body: None,
                                     backoff_base_s=0.01, backoff_max_s=0.05)
        with _running(connection, connect=False) as thread:
            fake.wait_for(lambda: len(accepted) >= 4, what="four connection attempts")
            assert thread.is_alive() and not connection.connected
        assert connection.connections == 0


def test_respond_and_send_need_a_connection(fake: FakeWeCom) -> None:
    connection = _connection(fake)
    for call in (lambda: connection.respond(req_id="r1", markdown="x"),
                 lambda: connection.send_markdown(chat_id="wrk1", content="x")):
        with pytest.raises(WeComError) as caught:
            call()
        assert caught.value.code == "network"
    with _running(connection):
        connection.send_markdown(chat_id="wrk1", content="online")
    assert not connection.connected
    with pytest.raises(WeComError) as caught:
        connection.send_markdown(chat_id="wrk1", content="after stop")
    assert caught.value.code == "network"
    assert [s.text for s in fake.sent] == ["online"]


def test_stop_at_any_moment_ends_run_forever(fake: FakeWeCom) -> None:
    # stop() may land while the connection is being opened or subscribed: it must still end.
    for i in range(30):
        connection = _connection(fake)
        with _running(connection, connect=False):
            time.sleep(i * 0.001)
