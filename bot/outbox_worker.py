"""Sends the outbox: claims due rows, posts them through the platform, settles each row."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from app.db import read_session, utcnow, write_session
from app.models import OutboxMessage
from app.services import outbox
from app.services.notices import Notice
from bot.types import Notification, reply_from_notice

log = logging.getLogger(__name__)

Sender = Callable[[Notification], None]


def notification_of(row: OutboxMessage) -> Notification:
    """An outbox row as the neutral notification a platform deliverer sends."""
    reply = reply_from_notice(Notice.from_payload(row.payload))
    kind, _, target = row.target.partition(":")
    if kind == "chat":
        return Notification(row.platform, reply, chat_id=target)
    return Notification(row.platform, reply, user_id=target)


class OutboxWorker:
    """Delivers due outbox rows; no database transaction is open while a post is sent."""

    def __init__(self, *, engine: Engine, senders: dict[str, Sender],
                 clock: Callable[[], datetime] = utcnow, batch: int = 50) -> None:
        self.engine = engine
        self.senders = senders
        self.clock = clock
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Send one batch of due rows; how many were sent."""
        # Look before taking the write lock: an idle worker must not queue behind real writers.
        with read_session(self.engine) as session:
            if not outbox.any_due(session=session, now=self.clock()):
                return 0
        with write_session(self.engine) as session:
            rows = outbox.claim_due(session=session, now=self.clock(), limit=self.batch)
        sent = 0
        for row in rows:
            assert row.id is not None
            error = self._send(row)
            with write_session(self.engine) as session:
                if error is None:
                    outbox.mark_sent(session=session, message_id=row.id, now=self.clock())
                    sent += 1
                else:
                    outbox.mark_failed(session=session, message_id=row.id, now=self.clock(),
                                       error=error, retryable=row.platform in self.senders)
        return sent

    def _send(self, row: OutboxMessage) -> str | None:
        sender = self.senders.get(row.platform)
        if sender is None:
            return f"no sender configured for platform {row.platform}"
        try:
            sender(notification_of(row))
        except Exception as exc:  # any failure is retried with backoff, never lost
            log.warning("outbox %s (%s) failed: %s", row.id, row.kind, type(exc).__name__)
            return f"{type(exc).__name__}: {exc}"
        return None

    def kick(self) -> None:
        """Wake the worker thread: something was just queued."""
        self._wake.set()

    def start(self, *, every_s: float = 2.0, extra: Callable[[], None] | None = None,
              extra_every_s: float = 60.0) -> None:
        """Run in a daemon thread until `stop()`; `extra` runs every `extra_every_s` seconds."""
        def loop() -> None:
            last_extra = 0.0
            while not self._stop.is_set():
                try:
                    while self.run_once():
                        pass
                    now = self.clock().timestamp()
                    if extra is not None and now - last_extra >= extra_every_s:
                        last_extra = now
                        extra()
                except Exception:  # keep delivering; the next round retries
                    log.exception("outbox worker round failed")
                self._wake.wait(every_s)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="outbox-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
