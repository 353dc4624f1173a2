"""Scheduled work: each job writes outbox rows (exactly once by their key) and never sends."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import text
from sqlmodel import Session, col, select

from app.models import OutboxMessage

# Rows per write transaction in a fan-out: short enough that SQLite's single writer (and a
# concurrent month close) never waits long, large enough that 5,000 groups take 25 commits.
BATCH = 200
# First half of every job's advisory-lock key, so that ours never collide with other users'.
_LOCK_NAMESPACE = 0x5050

T = TypeVar("T")


@dataclass
class JobResult:
    """What one job run did: rows queued now, rows found queued before, targets skipped."""

    job: str
    queued: int = 0
    already_queued: int = 0
    skipped: int = 0
    # Activities made final (finalize-due only).
    finalized: int = 0
    # Branch months closed (evaluation-close only).
    closed: int = 0
    # Another scheduler held this job's lock (PostgreSQL); it is doing the work.
    locked_out: bool = False

    def summary(self) -> str:
        """The counts in Chinese, for the CLI and the log."""
        parts = [f"新排队 {self.queued} 条", f"此前已排队 {self.already_queued} 条",
                 f"跳过 {self.skipped} 个"]
        if self.finalized:
            parts.append(f"确认考勤 {self.finalized} 个活动")
        if self.closed:
            parts.append(f"结账 {self.closed} 个支部")
        if self.locked_out:
            parts.append("另一个调度进程正在运行此任务，本次未处理剩余部分")
        return "，".join(parts)


def job_lock(session: Session, job: str) -> bool:
    """Take the job's transaction-level advisory lock on PostgreSQL; False if another holds it.

    Only a second line of defence against two schedulers: the outbox key is the guarantee.
    SQLite needs none (one host; write transactions are serialised anyway).
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    # crc32 rather than hash(): the key must be the same in every process.
    key = zlib.crc32(job.encode()) - (1 << 31)
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
                                {"ns": _LOCK_NAMESPACE, "key": key}).scalar())


def queued_targets(session: Session, *, kind: str, period: str,
                   targets: Iterable[str] | None = None) -> set[str]:
    """Targets that already have a row of (kind, period), optionally among `targets`."""
    query = select(OutboxMessage.target).where(OutboxMessage.kind == kind,
                                               OutboxMessage.period == period)
    if targets is not None:
        query = query.where(col(OutboxMessage.target).in_(list(targets)))
    return set(session.exec(query))


def batches(items: Sequence[T], size: int = BATCH,
            stop: threading.Event | None = None) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`, until `stop` is set.

    A scheduler shutting down sets `stop`: the fan-out ends after the batch in hand, and the
    next run queues the rest (the outbox key makes re-running harmless).
    """
    for start in range(0, len(items), size):
        if stop is not None and stop.is_set():
            return
        yield items[start:start + size]


def points_text(value: Decimal | None) -> str:
    """Points as people write them: 93.5, 90, -2 (— when there is no score)."""
    if value is None:
        return "—"
    shown = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if shown in ("-0", "") else shown
