"""Chat work done after the platform got its answer: a few long-lived threads."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from bot.types import Delivery

log = logging.getLogger(__name__)

# A delivery (one reply and its notices) that takes longer than this on average is handed to
# the send threads: DingTalk and WeCom answer a call in tens of ms, an idle fake in about one.
# Well above that, because a busy server's deliveries also wait for the interpreter lock: at
# 20 ms the fake, saturated, tipped the pool into handing off, which slowed it further.
HAND_OFF_ABOVE_S = 0.05
SMOOTHING = 0.2  # weight of the newest delivery in the moving average


class HandlerPool:
    """Runs chat handlers in a few threads once the callback endpoint has answered, and what
    they leave to send in many more.

    Handling is CPU-bound Python: a few threads at a time finish sooner than forty fighting over
    the interpreter lock. Sending is waiting: a platform API answers in tens of milliseconds,
    and a handler thread that waited for it would hold the next message back (three threads
    and two calls of 50 ms per reply make 30 replies a second). So a handler may return a
    `Delivery`, which runs in the send threads while the handler thread takes the next message.
    But only while deliveries are slow: a fast platform is answered sooner by the handler thread
    itself, because every extra runnable thread also fights over the lock (on 2 cores with an
    instant fake, handing off cost a reply 20–40% more CPU and doubled the callbacks' p50).

    The endpoint only queues the work; unlike a request's background task, a finished handler
    reports nothing back to the event loop, which would cost the loop a wake-up and the
    request's middleware a second pass for every message.
    """

    def __init__(self, *, threads: int, send_threads: int,
                 hand_off_above_s: float = HAND_OFF_ABOVE_S) -> None:
        self._handlers = ThreadPoolExecutor(threads, thread_name_prefix="chat-handler")
        self._senders = ThreadPoolExecutor(send_threads, thread_name_prefix="chat-send")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._hand_off_above_s = hand_off_above_s
        self._delivery_s = 0.0  # moving average of how long a delivery takes

    @property
    def hands_off(self) -> bool:
        """Whether deliveries now go to the send threads (they have been slow)."""
        return self._delivery_s > self._hand_off_above_s

    def submit(self, handler: Callable[..., object], /, **kwargs: Any) -> bool:
        """Queue `handler(**kwargs)`, and the `Delivery` it returns, if any, after it; False
        when the pool is shutting down."""
        try:
            future = self._handlers.submit(self._handle, handler, kwargs)
        except RuntimeError:
            log.warning("chat handler refused: the server is shutting down")
            return False
        self._track(future)
        return True

    def _handle(self, handler: Callable[..., object], kwargs: dict[str, Any]) -> None:
        delivery = handler(**kwargs)
        if not callable(delivery):
            return
        if self.hands_off:
            # Tracked before this handler's own future completes, so join() never misses it.
            self._track(self._senders.submit(self._timed, delivery))
        else:
            self._timed(delivery)

    def _timed(self, delivery: Delivery) -> None:
        started = time.monotonic()
        try:
            delivery()
        except Exception:
            log.exception("chat delivery failed")
        finally:
            # Unlocked: a lost update among racing threads only delays the switch a message.
            self._delivery_s += SMOOTHING * (time.monotonic() - started - self._delivery_s)

    def _track(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._finished)

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            log.error("chat handler failed", exc_info=error)

    def join(self) -> None:
        """Wait until everything queued so far has been handled and sent."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            wait(pending)

    def shutdown(self) -> None:
        """Finish what is queued (it was acknowledged to the platform) and send what it left,
        then stop the threads."""
        self._handlers.shutdown(wait=True)
        self._senders.shutdown(wait=True)
