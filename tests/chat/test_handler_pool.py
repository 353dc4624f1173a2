"""The chat handler pool: queued work runs, failures are logged, shutdown drains then refuses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

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


def test_a_slow_delivery_does_not_hold_the_next_message_back():
    pool = HandlerPool(threads=1, send_threads=2)
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


def test_a_failing_delivery_is_logged_and_join_waits_for_deliveries(caplog):
    pool = HandlerPool(threads=1, send_threads=1)
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
    pool = HandlerPool(threads=1, send_threads=1)
    gate, sent = threading.Event(), []
    pool.submit(gate.wait, timeout=5)
    pool.submit(lambda: partial(sent.append, "reply"))  # queued behind the first
    threading.Timer(0.05, gate.set).start()
    pool.shutdown()
    assert sent == ["reply"]
