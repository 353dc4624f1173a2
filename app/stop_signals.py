"""SIGTERM and SIGINT for the long-running commands, acted on outside the signal handler."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signal(stop: Callable[[], None], *, message: str) -> Iterator[None]:
    """Inside the block, SIGTERM or SIGINT logs `message` (with the signal's name) and calls
    `stop()` in a thread of its own; the previous handlers come back afterwards.

    Python runs a signal handler in the main thread between two bytecodes, possibly while that
    thread holds a lock `stop` needs (an Event's, while it waits on the Event): `stop` called
    in the handler would wait for itself forever. A thread waits until the main thread lets go.
    """

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(message, signal.Signals(signum).name)
        threading.Thread(target=stop, name="stop-signal", daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for(event: threading.Event) -> None:
    """Block the main thread until `event` is set, still running signal handlers meanwhile.

    A process-wide signal may be delivered to any thread; one that lands in another thread does
    not wake a main thread blocked in a plain `wait()`, so its Python handler would never run.
    """
    while not event.wait(0.5):
        pass
