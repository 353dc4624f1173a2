"""Chat work done after the platform got its answer: a few threads at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# Handling is CPU-bound Python: a few threads at a time finish sooner than forty fighting over
# the interpreter lock, and leave the event loop free to answer the platform at once.
_HANDLERS = threading.BoundedSemaphore(4)


def bounded(handler: Callable[..., Any], /, **kwargs: Any) -> None:
    """Run `handler(**kwargs)` once a handler slot is free (a FastAPI background task)."""
    with _HANDLERS:
        handler(**kwargs)
