"""The chat handler pool: queued work runs, failures are logged, shutdown drains then refuses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

import pytest

from bot.background import HandlerPool


def test_a_failing_handler_is_logged_and_the_pool_goes_on(caplog):
    pool = HandlerPool(threads=2, send_threads=2)
    done: list[int] = []

    def fail() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        assert pool.submit(fail)
        for n in range(5):
            assert pool.submit(partial(done.append, n))
        pool.join()
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert "chat handler failed" in caplog.text and "boom" in caplog.text
    pool.shutdown()


def test_join_waits_for_handlers_still_running():
    pool = HandlerPool(threads=1, send_threads=2)
    release, finished = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(5)
        finished.set()

    pool.submit(slow)
    threading.Timer(0.05, release.set).start()
    pool.join()
    assert finished.is_set()
    pool.shutdown()


def test_shutdown_finishes_queued_work_then_refuses(caplog):
    pool = HandlerPool(threads=1, send_threads=2)
    gate, done = threading.Event(), []
    pool.submit(gate.wait, timeout=5)
    pool.submit(partial(done.append, "queued"))  # waits behind the first
    threading.Timer(0.05, gate.set).start()
    pool.shutdown()
    assert done == ["queued"]
    with caplog.at_level(logging.WARNING):
        assert pool.submit(partial(done.append, "late")) is False
    assert done == ["queued"]
    assert "shutting down" in caplog.text


def _deliveries_run_in(pool: HandlerPool, seconds: float, times: int) -> list[str]:
    """Thread names the deliveries of `times` messages ran in, each taking `seconds`."""
    where: list[str] = []

    def deliver() -> None:
        where.append(threading.current_thread().name)
        time.sleep(seconds)

    for _ in range(times):
        pool.submit(lambda: deliver)
        pool.join()
    return where


def test_deliveries_go_to_the_send_threads_while_the_platform_is_slow_and_come_back():
    pool = HandlerPool(threads=1, send_threads=2, hand_off_above_s=0.01)
    fast = _deliveries_run_in(pool, 0, 3)
    assert all(name.startswith("chat-handler") for name in fast)
    slow = _deliveries_run_in(pool, 0.03, 6)
    assert slow[0].startswith("chat-handler") and slow[-1].startswith("chat-send")
    assert pool.hands_off
    again = _deliveries_run_in(pool, 0, 20)
    assert again[-1].startswith("chat-handler") and not pool.hands_off
    pool.shutdown()


def test_a_slow_delivery_does_not_hold_the_next_message_back():
    pool = HandlerPool(threads=1, send_threads=2, hand_off_above_s=0.01)
    _deliveries_run_in(pool, 0.03, 6)
    assert pool.hands_off
    gate, second_handled, sent = threading.Event(), threading.Event(), []

    def first() -> Callable[[], None]:
        def deliver() -> None:
            gate.wait(5)  # the platform taking its time
            sent.append("first")
        return deliver

    pool.submit(first)
    pool.submit(second_handled.set)
    # The only handler thread is free as soon as the first message is dispatched.
    assert second_handled.wait(2)
    assert sent == []
    gate.set()
    pool.join()
    assert sent == ["first"]
    pool.shutdown()


@pytest.mark.parametrize("slow_platform", [False, True])
def test_a_failing_delivery_is_logged_and_join_waits_for_deliveries(caplog, slow_platform):
    pool = HandlerPool(threads=1, send_threads=1, hand_off_above_s=0.01)
    if slow_platform:
        _deliveries_run_in(pool, 0.03, 6)
    assert pool.hands_off is slow_platform
    sent: list[int] = []

    def broken() -> None:
        raise RuntimeError("platform down")

    with caplog.at_level(logging.ERROR):
        pool.submit(lambda: broken)
        pool.submit(lambda: partial(sent.append, 1))
        pool.join()
    assert sent == [1]
    assert "chat delivery failed" in caplog.text and "platform down" in caplog.text
    pool.shutdown()


def test_shutdown_sends_what_the_queued_handlers_leave():
    pool = HandlerPool(threads=1, send_threads=1, hand_off_above_s=0.01)
    _deliveries_run_in(pool, 0.03, 6)
    gate, sent = threading.Event(), []
    pool.submit(gate.wait, timeout=5)
    pool.submit(lambda: partial(sent.append, "reply"))  # queued behind the first
    threading.Timer(0.05, gate.set).start()
    pool.shutdown()
    assert sent == ["reply"]
