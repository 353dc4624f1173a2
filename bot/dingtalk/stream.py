"""DingTalk Stream mode (platforms.md §2): one outbound WebSocket that brings robot messages and
card clicks, with no public callback URL.

SDK or protocol? We speak the protocol ourselves (httpx + `websockets`) and do not use the
official `dingtalk-stream` SDK. Its source (open-dingtalk/dingtalk-stream-sdk-python, stream.py,
handlers.py, frames.py) shows why:

- Handlers are `async def process()` coroutines on the SDK's event loop, and the SDK writes the
  ack only after `process` returns. Our dispatcher is blocking (database, httpx), so calling it
  there blocks the event loop: no pings, no acks, no other frames until it returns. Getting
  "ack first, process in a bounded thread pool" means bypassing the SDK's handler contract
  anyway, and that contract is most of what it offers.
- The gateway URL is a class attribute computed at import from the `DINGTALK_OPENAPI_ENDPOINT`
  environment variable, so it cannot follow our `DINGTALK_API_BASE` setting per instance (tests
  point every client at its own fake) without mutating global state.
- It registers with `requests` (and pulls in `aiohttp` too) next to our httpx, and probes the
  local IP by opening a UDP socket towards 8.8.8.8 on every registration; tests must not leave
  127.0.0.1.
- Its per-message result cache lives 5 minutes; we skip redelivered frames for 10.

The protocol itself is small and mirrored here exactly as the SDK speaks it: register with
`POST /v1.0/gateway/connections/open`, connect to `endpoint?ticket=`, echo SYSTEM `ping`,
re-register on SYSTEM `disconnect`, ack every frame as `AckMessage.to_dict()` does, WebSocket
pings every 60 s, and reconnect after `min(2**n + U(0,1), 60)` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.dingtalk.client import install_log_redaction

__all__ = ["BOT_TOPIC", "CARD_TOPIC", "StreamClient", "StreamError"]

log = logging.getLogger(__name__)

BOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
SUBSCRIPTIONS = (
    {"type": "EVENT", "topic": "*"},
    {"type": "CALLBACK", "topic": BOT_TOPIC},
    {"type": "CALLBACK", "topic": CARD_TOPIC},
)
# `ua` is informational for DingTalk; say what we are and which SDK's protocol we mirror.
USER_AGENT = "partypoints-stream/0.1 (protocol of dingtalk-sdk-python/v0.24)"
DEDUPE_MAX_ENTRIES = 10_000

install_log_redaction()  # websockets logs the connect URL, ticket included, at DEBUG


class StreamError(Exception):
    """The gateway refused to register the connection or sent something unusable."""


def _ack(message_id: str | None, *, code: int, message: str, data: str) -> dict:
    """An ack frame exactly as ds-py `AckMessage.to_dict()` builds it."""
    return {
        "code": code,
        "headers": {"messageId": message_id or "", "contentType": "application/json"},
        "message": message,
        "data": data,
    }


def _callback_ack(message_id: str, response: Any, *, code: int = 200, message: str = "OK") -> dict:
    return _ack(message_id, code=code, message=message, data=json.dumps({"response": response}))


class StreamClient:
    """The Stream-mode long connection: frames in, acks out, handlers in a bounded thread pool."""

    def __init__(
        self,
        *,
        http_base: str,
        client_id: str,
        client_secret: str,
        on_bot_message: Callable[[dict], None],
        on_card_callback: Callable[[dict], dict | None],
        max_workers: int = 8,
        http: httpx.AsyncClient | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        ping_interval_s: float = 60.0,
        dedupe_window_s: float = 600.0,
        ws_options: dict[str, Any] | None = None,
    ) -> None:
        # on_bot_message(data): the frame's data (the §1.3 body), called in a worker thread
        # after the ack. on_card_callback(data): the click (`content` and `extension` are JSON
        # strings, as DingTalk sends them), called in a worker thread before the ack; what it
        # returns (a card update, §3.4, or None) travels in the ack as `response`.
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._http_base = http_base.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._on_bot_message = on_bot_message
        self._on_card_callback = on_card_callback
        self._max_workers = max_workers
        self._http = http
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._ping_interval_s = ping_interval_s
        self._dedupe_window_s = dedupe_window_s
        self._ws_options = dict(ws_options or {})
        # messageId -> (monotonic time acked, the ack): a redelivered frame gets the same ack
        # again without running its handler twice.
        self._recent: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._got_frame = False
        self._ticket: str | None = None
        self.connections = 0  # successful WebSocket handshakes, for tests and logs

    # ------------------------------------------------------------------ public API

    def run_forever(self) -> None:
        """Run until `stop()` or Ctrl-C (blocking; for the CLI)."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.run())

    async def run(self) -> None:
        """Register, connect, serve frames and reconnect with backoff until `stop()`."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_requested.is_set():  # stop() came first; it is final
            self._loop = None
            return
        pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="dingtalk-stream")
        http = self._http or httpx.AsyncClient(timeout=10.0)
        attempt = 0
        try:
            while not self._stop_event.is_set():
                self._got_frame = False
                self._session_task = asyncio.create_task(self._session(http, pool))
                try:
                    await self._session_task
                except asyncio.CancelledError:
                    if not self._stop_event.is_set():
                        raise
                    break
                except Exception as exc:
                    log.warning("dingtalk stream: connection failed: %s", self._describe(exc))
                finally:
                    self._session_task = None
                if self._stop_event.is_set():
                    break
                # A connection that delivered frames was healthy: start the backoff over.
                if self._got_frame:
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
                log.info("dingtalk stream: reconnecting in %.2fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), timeout=delay)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._http is None:
                await http.aclose()
            # Bot messages were acked before they ran: let the running ones finish, or they
            # are lost (DingTalk will not send them again).
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
            self._loop = None
            log.info("dingtalk stream: stopped")

    def stop(self) -> None:
        """Stop reconnecting and close the connection; safe to call from any thread."""
        self._stop_requested.set()
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(self._stop_in_loop)

    # ------------------------------------------------------------------ internals

    def _stop_in_loop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
        if self._session_task is not None:
            self._session_task.cancel()

    def _backoff(self, attempt: int) -> float:
        base = self._backoff_base_s
        delay = base * 2 ** min(attempt, 16) + random.uniform(0, base)
        return min(delay, self._backoff_max_s)

    async def _register(self, http: httpx.AsyncClient) -> tuple[str, str]:
        """Open a connection ticket; the secret goes in the body and never into a log line."""
        response = await http.post(
            f"{self._http_base}/v1.0/gateway/connections/open",
            json={
                "clientId": self._client_id,
                "clientSecret": self._client_secret,
                "subscriptions": list(SUBSCRIPTIONS),
                "ua": USER_AGENT,
                "localIp": "",
            },
            headers={"Accept": "application/json"},
        )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400 or not isinstance(payload, dict):
            code = payload.get("code") if isinstance(payload, dict) else None
            raise StreamError(f"register failed: HTTP {response.status_code} code={code}")
        endpoint, ticket = payload.get("endpoint"), payload.get("ticket")
        if not endpoint or not ticket:
            raise StreamError("register answer has no endpoint or ticket")
        return str(endpoint), str(ticket)

    async def _session(self, http: httpx.AsyncClient, pool: ThreadPoolExecutor) -> None:
        """One registration and one WebSocket connection, until it closes."""
        endpoint, ticket = await self._register(http)
        self._ticket = ticket
        options: dict[str, Any] = {
            "ping_interval": self._ping_interval_s,
            "ping_timeout": 20,
            "open_timeout": 10,
            "close_timeout": 5,
        } | self._ws_options
        async with connect(f"{endpoint}?ticket={quote_plus(ticket)}", **options) as ws:
            self._ws = ws
            self.connections += 1
            log.info("dingtalk stream: connected to %s", endpoint)  # the ticket stays out
            try:
                async for raw in ws:
                    self._got_frame = True
                    await self._on_frame(ws, raw, pool)
            except ConnectionClosed as exc:
                log.info("dingtalk stream: connection closed (%s)", exc.rcvd or "no close frame")
            finally:
                self._ws = None

    async def _on_frame(
        self, ws: ClientConnection, raw: str | bytes, pool: ThreadPoolExecutor
    ) -> None:
        try:
            frame = json.loads(raw)
            headers = frame.get("headers") or {}
        except (ValueError, AttributeError):
            log.warning("dingtalk stream: unparsable frame ignored")
            return
        kind = frame.get("type")
        topic = headers.get("topic")
        message_id = headers.get("messageId")
        if kind == "SYSTEM":
            # ping: echo the data; disconnect: ack, then close and register again.
            await self._send(
                ws, _ack(message_id, code=200, message="OK", data=frame.get("data", ""))
            )
            if topic == "disconnect":
                log.info("dingtalk stream: gateway asked to reconnect")
                await ws.close()
            return
        if kind == "EVENT":
            # We subscribe to events as the SDK does but handle none; acking stops redelivery.
            data = json.dumps({"status": "SUCCESS", "message": "ignored"})
            await self._send(ws, _ack(message_id, code=200, message="OK", data=data))
            return
        if kind != "CALLBACK" or not message_id:
            log.warning("dingtalk stream: unexpected frame type=%s topic=%s", kind, topic)
            return
        cached = self._recent_ack(message_id)
        if cached is not None:
            log.info("dingtalk stream: redelivered frame %s acked again, not handled", message_id)
            await self._send(ws, cached)
            return
        if message_id in self._inflight:
            return  # a card click still being computed; its ack follows
        try:
            raw_data = frame.get("data")
            # DingTalk sends `data` as a JSON string; tolerate an object all the same.
            data = raw_data if isinstance(raw_data, dict) else json.loads(raw_data or "")
            if not isinstance(data, dict):
                raise ValueError("data is not an object")
        except (TypeError, ValueError):
            log.warning("dingtalk stream: frame %s has unusable data", message_id)
            await self._send(ws, _callback_ack(message_id, None, code=400, message="bad data"))
            return
        if topic == BOT_TOPIC:
            # Ack first: the handler may take longer than DingTalk waits before redelivering.
            ack = _callback_ack(message_id, "OK")
            self._remember(message_id, ack)
            await self._send(ws, ack)
            pool.submit(self._run_bot_handler, message_id, data)
        elif topic == CARD_TOPIC:
            # The card update travels in the ack, so the handler runs before we answer.
            self._inflight.add(message_id)
            task = asyncio.create_task(self._answer_card(ws, message_id, data, pool))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            ack = _callback_ack(message_id, None, code=404, message="no handler for topic")
            self._remember(message_id, ack)
            await self._send(ws, ack)

    def _run_bot_handler(self, message_id: str, data: dict) -> None:
        try:
            self._on_bot_message(data)
        except Exception:
            log.exception("dingtalk stream: bot message handler failed (frame %s)", message_id)

    async def _answer_card(
        self, ws: ClientConnection, message_id: str, data: dict, pool: ThreadPoolExecutor
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(pool, self._on_card_callback, data)
            ack = _callback_ack(message_id, response)
            # Only a success is remembered: after a failure the redelivery runs the handler again.
            self._remember(message_id, ack)
        except Exception:
            log.exception("dingtalk stream: card callback handler failed (frame %s)", message_id)
            ack = _callback_ack(message_id, None, code=500, message="handler error")
        finally:
            self._inflight.discard(message_id)
        await self._send(ws, ack)

    async def _send(self, ws: ClientConnection, ack: dict) -> None:
        try:
            await ws.send(json.dumps(ack, ensure_ascii=False))
        except ConnectionClosed:
            # The gateway redelivers an un-acked frame; the cache answers it then.
            log.info("dingtalk stream: connection closed before an ack could be sent")

    def _recent_ack(self, message_id: str) -> dict | None:
        entry = self._recent.get(message_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self._dedupe_window_s:
            self._recent.pop(message_id, None)
            return None
        return entry[1]

    def _remember(self, message_id: str, ack: dict) -> None:
        now = time.monotonic()
        self._recent[message_id] = (now, ack)
        self._recent.move_to_end(message_id)
        while self._recent:
            oldest_id, (acked_at, _) = next(iter(self._recent.items()))
            if now - acked_at <= self._dedupe_window_s and len(self._recent) <= DEDUPE_MAX_ENTRIES:
                break
            self._recent.pop(oldest_id)

    def _describe(self, exc: BaseException) -> str:
        """An exception for a log line, with the connection ticket (a credential) blanked out."""
        text = str(exc)
        if self._ticket:
            text = text.replace(self._ticket, "***").replace(quote_plus(self._ticket), "***")
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
