"""The WeCom AI bot's long connection (platforms.md §8.2), on the protocol of the official
aibot-node SDK: `aibot_subscribe`, a ping every 30 s, callbacks in, `aibot_respond_msg` on the
callback's `req_id`, `aibot_send_msg` for posts, reconnects with backoff.

Our own asyncio client rather than a PyPI port: none is published by Tencent, and handlers
run in a thread pool so the event loop only moves frames. After a `disconnected_event` (another
connection took over the bot) it stops for good: two instances must not fight over one bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bot.wecom.client import WeComError, truncate_markdown

log = logging.getLogger(__name__)

# Stream replies carry at most 20480 bytes of markdown (§8.1).
STREAM_MAX_BYTES = 20480
ACK_TIMEOUT_S = 5.0
MISSED_PINGS_DEAD = 2


def req_id(cmd: str) -> str:
    """A request id as the SDK makes them: "{cmd}_{ms}_{8 hex}"."""
    return f"{cmd}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


class AibotAuthError(Exception):
    """The platform refused `aibot_subscribe` (wrong bot id or secret, or too many logins)."""


class AibotConnection:
    """One bot's long connection; `respond` and `send_markdown` may be called from any thread."""

    def __init__(
        self,
        *,
        url: str,
        bot_id: str,
        secret: str,
        on_message: Callable[[str, dict[str, Any]], None],
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        max_workers: int = 4,
        ping_interval_s: float = 30.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_auth_failures: int = 5,
    ) -> None:
        # on_message(req_id, body) runs in a worker thread for each aibot_msg_callback;
        # on_event(req_id, body) likewise for events other than disconnected_event.
        self._url = url
        self._bot_id = bot_id
        self._secret = secret
        self._on_message = on_message
        self._on_event = on_event
        self._max_workers = max_workers
        self._ping_interval_s = ping_interval_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._max_auth_failures = max_auth_failures
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: ClientConnection | None = None
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._stop_requested = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._connected = threading.Event()
        self._closing: set[asyncio.Future[None]] = set()
        self.taken_over = False
        self.connections = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """Subscribed and not closed."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed (for tests and start-up logs)."""
        return self._connected.wait(timeout)

    def run_forever(self) -> None:
        """Run until `stop()`, a takeover or Ctrl-C (blocking; for the CLI)."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.run())

    async def run(self) -> None:
        """Connect, subscribe, serve frames and reconnect with backoff until stopped."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="wecom-aibot")
        attempt = auth_failures = 0
        try:
            while not self._stop_requested.is_set() and not self.taken_over:
                healthy = False
                try:
                    healthy = await self._session(pool)
                except AibotAuthError as exc:
                    auth_failures += 1
                    log.warning("wecom aibot: subscribe refused (%s), %d/%d", exc,
                                auth_failures, self._max_auth_failures)
                    if auth_failures >= self._max_auth_failures:
                        log.error("wecom aibot: giving up after %d refused subscribes",
                                  auth_failures)
                        break
                # InvalidHandshake: refused with an HTTP status (a gateway's 502...) or no
                # valid HTTP answer at all; as transient as a refused TCP connection.
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    log.warning("wecom aibot: connection failed: %s", type(exc).__name__)
                finally:
                    self._connected.clear()
                if self._stop_requested.is_set() or self.taken_over:
                    break
                if healthy:
                    attempt = auth_failures = 0
                delay = min(self._backoff_base_s * 2 ** min(attempt, 16)
                            + random.uniform(0, self._backoff_base_s), self._backoff_max_s)
                attempt += 1
                log.info("wecom aibot: reconnecting in %.2fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), timeout=delay)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
            self._loop = None
            log.info("wecom aibot: stopped")

    def stop(self) -> None:
        """Stop and close the connection; safe from any thread."""
        self._stop_requested.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop_in_loop)

    def _stop_in_loop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
        self._close_soon()

    def _close_soon(self) -> None:
        if self._ws is not None:
            task = asyncio.ensure_future(self._ws.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ outbound (any thread)

    def respond(self, *, req_id: str, markdown: str) -> None:
        """Answer a callback on its own req_id, as one finished stream message."""
        body = {"msgtype": "stream",
                "stream": {"id": uuid.uuid4().hex, "finish": True,
                           "content": truncate_markdown(markdown, STREAM_MAX_BYTES)}}
        self._request("aibot_respond_msg", body, reuse_req_id=req_id)

    def send_markdown(self, *, chat_id: str, content: str) -> None:
        """Post markdown to a group or 1:1 chat the bot is in (`aibot_send_msg`)."""
        self._request("aibot_send_msg", {"chatid": chat_id, "msgtype": "markdown",
                                         "markdown": {"content": content}})

    def _request(self, cmd: str, body: dict[str, Any], *, reuse_req_id: str = "") -> None:
        loop = self._loop
        if loop is None or not self.connected:
            raise WeComError(code="network", message="the AI bot is not connected")
        frame = {"cmd": cmd, "headers": {"req_id": reuse_req_id or req_id(cmd)}, "body": body}
        future = asyncio.run_coroutine_threadsafe(self._send_and_wait(frame), loop)
        try:
            ack = future.result(ACK_TIMEOUT_S + 1)
        except (TimeoutError, ConnectionClosed, OSError) as exc:
            raise WeComError(code="network", message=f"{cmd}: {type(exc).__name__}") from None
        if int(ack.get("errcode") or 0) != 0:
            raise WeComError(code=str(ack.get("errcode")), message=str(ack.get("errmsg", "")))

    async def _send_and_wait(self, frame: dict[str, Any]) -> dict[str, Any]:
        ws = self._ws
        if ws is None:
            raise ConnectionClosed(None, None)
        rid = frame["headers"]["req_id"]
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[rid] = waiter
        try:
            await ws.send(json.dumps(frame, ensure_ascii=False))
            return await asyncio.wait_for(waiter, ACK_TIMEOUT_S)
        finally:
            self._acks.pop(rid, None)

    # ------------------------------------------------------------------ one connection

    async def _session(self, pool: ThreadPoolExecutor) -> bool:
        """One connection until it closes; True when it was subscribed (a healthy session)."""
        async with connect(self._url, ping_interval=None, open_timeout=10,
                           close_timeout=5) as ws:
            self._ws = ws
            try:
                if self._stop_requested.is_set():  # stop() came while connecting: no _ws to close
                    return False
                await self._subscribe(ws)
                self.connections += 1
                self._connected.set()
                log.info("wecom aibot: connected and subscribed as %s", self._bot_id)
                pinger = asyncio.create_task(self._ping(ws))
                try:
                    async for raw in ws:
                        self._on_frame(raw, pool)
                except ConnectionClosed:
                    pass
                finally:
                    pinger.cancel()
                    await asyncio.gather(pinger, return_exceptions=True)
                log.info("wecom aibot: connection closed")
                return True
            finally:
                self._ws = None
                for waiter in self._acks.values():
                    if not waiter.done():
                        waiter.set_exception(ConnectionClosed(None, None))

    async def _subscribe(self, ws: ClientConnection) -> None:
        rid = req_id("aibot_subscribe")
        await ws.send(json.dumps({"cmd": "aibot_subscribe", "headers": {"req_id": rid},
                                  "body": {"bot_id": self._bot_id, "secret": self._secret}}))
        raw = await asyncio.wait_for(ws.recv(), ACK_TIMEOUT_S)
        ack = json.loads(raw)
        if ack.get("headers", {}).get("req_id") != rid or int(ack.get("errcode") or 0) != 0:
            raise AibotAuthError(f"errcode {ack.get('errcode')}")

    async def _ping(self, ws: ClientConnection) -> None:
        missed = 0
        while True:
            await asyncio.sleep(self._ping_interval_s)
            try:
                await self._send_and_wait({"cmd": "ping", "headers": {"req_id": req_id("ping")}})
                missed = 0
            except TimeoutError:
                missed += 1
                if missed >= MISSED_PINGS_DEAD:
                    log.warning("wecom aibot: %d pings unanswered, reconnecting", missed)
                    await ws.close()
                    return

    def _on_frame(self, raw: str | bytes, pool: ThreadPoolExecutor) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("wecom aibot: a frame that is not JSON was ignored")
            return
        rid = str((frame.get("headers") or {}).get("req_id", ""))
        cmd = frame.get("cmd")
        if cmd is None:  # an ack of something we sent
            waiter = self._acks.get(rid)
            if waiter is not None and not waiter.done():
                waiter.set_result(frame)
            return
        body = frame.get("body") or {}
        if cmd == "aibot_msg_callback":
            pool.submit(self._guarded, self._on_message, rid, body)
        elif cmd == "aibot_event_callback":
            eventtype = (body.get("event") or {}).get("eventtype")
            if eventtype == "disconnected_event":
                log.warning("wecom aibot: another connection took over this bot; stopping")
                self.taken_over = True
                self._stop_requested.set()
                self._close_soon()
            elif self._on_event is not None:
                pool.submit(self._guarded, self._on_event, rid, body)

    @staticmethod
    def _guarded(handler: Callable[[str, dict[str, Any]], None], rid: str,
                 body: dict[str, Any]) -> None:
        try:
            handler(rid, body)
        except Exception:
            log.exception("wecom aibot: handler failed for %s", rid)
