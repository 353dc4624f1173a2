"""What every fake platform server shares: serving on 127.0.0.1 in a thread, stopping, resetting
between tests, and running coroutines on its loop from test threads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette

from app.stop_signals import stop_on_signal, wait_for


class ThreadedFake:
    """A fake server's lifecycle; subclasses build `app`, keep `_loop` and close connections."""

    label = "fake"
    app: Starlette
    base_url: str
    _loop: asyncio.AbstractEventLoop | None

    def _init_serving(self) -> None:
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @classmethod
    @contextlib.contextmanager
    def running(cls, *, port: int = 0, **kwargs: Any) -> Iterator[Self]:
        """Serve a fake (constructor `kwargs`) on 127.0.0.1 for the duration of the block."""
        fake = cls(**kwargs)
        fake.start(port=port)
        try:
            yield fake
        finally:
            fake.stop()

    def _bound(self, port: int) -> None:
        """Set the fake's URLs once its port is known."""
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self, *, port: int = 0) -> None:
        """Serve on 127.0.0.1 (`port` 0: any free port) in a background thread, once started."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self._bound(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,  # query strings carry access tokens and webhook keys
            lifespan="on",
            ws_ping_interval=None,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True, name=self.label)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.label} server did not start")
            time.sleep(0.005)
        self._sock = sock

    def stop(self) -> None:
        """Close every long connection and stop the server."""
        if self._server is None or self._thread is None:
            return
        if self._loop is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close_all(code=1001), timeout=3)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = None

    def reset(self) -> None:
        """Forget all state and drop every long connection: one running fake, many tests."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._call(self._close_all(code=1001), timeout=3)
        self._reset_state()

    def _reset_state(self) -> None:
        raise NotImplementedError

    async def _close_all(self, *, code: int) -> None:
        raise NotImplementedError

    def _call(self, coro: Awaitable[Any], timeout: float = 5.0) -> Any:
        """Run a coroutine on the server's loop from a test thread and wait for it."""
        assert self._loop is not None, "the fake is not running"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]


def wait_until_stopped() -> None:
    """Block until Ctrl-C or SIGTERM (a fake started in the background never sees SIGINT)."""
    done = threading.Event()
    with stop_on_signal(done.set, message="%s received: stopping the fake"):
        wait_for(done)
