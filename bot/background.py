"""Chat work done after the platform got its answer: a few long-lived threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

log = logging.getLogger(__name__)


class HandlerPool:
    """Runs chat handlers in a few threads once the callback endpoint has answered.

    Handling is CPU-bound Python: a few threads at a time finish sooner than forty fighting over
    the interpreter lock. The endpoint only queues the work; unlike a request's background task,
    a finished handler reports nothing back to the event loop, which would cost the loop a
    wake-up and the request's middleware a second pass for every message.
    """

    def __init__(self, *, threads: int) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="chat-handler")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, handler: Callable[..., Any], /, **kwargs: Any) -> bool:
        """Queue `handler(**kwargs)`; False when the pool is shutting down."""
        try:
            future = self._pool.submit(handler, **kwargs)
        except RuntimeError:
            log.warning("chat handler refused: the server is shutting down")
            return False
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return True

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            log.error("chat handler failed", exc_info=error)

    def join(self) -> None:
        """Wait until everything queued so far has been handled."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            wait(pending)

    def shutdown(self) -> None:
        """Finish what is queued (it was acknowledged to the platform), then stop the threads."""
        self._pool.shutdown(wait=True)
