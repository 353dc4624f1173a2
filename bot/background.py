"""Chat work done after the platform got its answer: a few long-lived threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

log = logging.getLogger(__name__)


class HandlerPool:
    """Runs chat handlers in a few threads once the callback endpoint has answered, and what
    they leave to send in many more.

    Handling is CPU-bound Python: a few threads at a time finish sooner than forty fighting over
    the interpreter lock. Sending is waiting: a platform API answers in tens of milliseconds,
    and a handler thread that waited for it would hold the next message back (three threads
    and two calls of 50 ms per reply make 30 replies a second). So a handler may return a
    `Delivery`, which runs in the send threads while the handler thread takes the next message.

    The endpoint only queues the work; unlike a request's background task, a finished handler
    reports nothing back to the event loop, which would cost the loop a wake-up and the
    request's middleware a second pass for every message.
    """

    def __init__(self, *, threads: int, send_threads: int) -> None:
        self._handlers = ThreadPoolExecutor(threads, thread_name_prefix="chat-handler")
        self._senders = ThreadPoolExecutor(send_threads, thread_name_prefix="chat-send")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, handler: Callable[..., object], /, **kwargs: Any) -> bool:
        """Queue `handler(**kwargs)`, and the `Delivery` it returns, if any, after it; False
        when the pool is shutting down."""
        try:
            future = self._handlers.submit(self._handle, handler, kwargs)
        except RuntimeError:
            log.warning("chat handler refused: the server is shutting down")
            return False
        self._track(future, "chat handler failed")
        return True

    def _handle(self, handler: Callable[..., object], kwargs: dict[str, Any]) -> None:
        delivery = handler(**kwargs)
        if callable(delivery):
            # Tracked before this handler's own future completes, so join() never misses it.
            self._track(self._senders.submit(delivery), "chat delivery failed")

    def _track(self, future: Future[Any], failure: str) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(lambda done: self._finished(done, failure))

    def _finished(self, future: Future[Any], failure: str) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            log.error(failure, exc_info=error)

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
