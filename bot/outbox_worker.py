"""Sends the outbox: claims due rows, posts them through the platform, settles each row.

Every row travels in a lane: its group's own robot webhook (DingTalk custom robot, WeCom group
robot: 20 a minute each) or the platform app's API (a configurable rate). A row whose lane is
full is handed back, due when a slot frees, without counting an attempt, so the worker does not
ask a platform for more than it allows. Failures are classified: "too fast" and network errors
are retried with backoff, a refusal of the message itself is dead at once. No database
transaction is open while a post is sent.

The lanes are counted in this process: run one delivery process per database (several on
PostgreSQL still deliver each row once, but could together exceed a robot's limit; the
platform's "too fast" answer then backs them off).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import read_session, utcnow, write_session
from app.domain.ratelimit import Rate, SlidingWindowLimiter, per_minute, smoothed
from app.models import ChatGroup, OutboxMessage, OutboxStatus
from app.services import outbox
from app.services.notices import Notice
from bot.types import Notification, reply_from_notice

log = logging.getLogger(__name__)

Sender = Callable[[Notification], None]

# "Too fast": DingTalk custom robots answer 130101 (410100 is said to replace it), WeCom 45009.
RATE_LIMIT_CODES = frozenset({"130101", "410100", "45009"})
# -1 is "system busy" on both platforms; "network" is the DingTalk client's transport failure.
TRANSIENT_CODES = frozenset({"-1", "network"})
# DingTalk locks a custom robot out for 10 minutes once it goes over 20 a minute.
DINGTALK_ROBOT_LOCKOUT_S = 600.0
# Elsewhere a "too fast" answer shuts the lane for one minute, the platforms' usual window.
LOCKOUT_S = 60.0
# Slack on a robot's minute: the platform counts on its own clock, at a granularity not known.
ROBOT_WINDOW_MARGIN_S = 1.0
# Fan-out progress goes to the log every this many sent posts ("已发送 300/5000").
PROGRESS_EVERY = 100
# Rows due within this horizon count towards a fan-out's total (deferrals and backoffs fall in
# it; a reminder queued for tomorrow does not).
FANOUT_HORIZON = timedelta(hours=1)


@dataclass(frozen=True)
class RobotHook:
    """A group's own robot: a DingTalk custom robot or a WeCom group robot webhook."""

    webhook: str
    secret: str | None = None

    def __repr__(self) -> str:
        # The webhook URL carries the robot's access token.
        return "RobotHook(***)"


RobotSender = Callable[[RobotHook, Notification], None]


class Failure(StrEnum):
    """How a failed send is handled."""

    RATE_LIMITED = "rate-limited"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


def _throttle_like(code: str) -> bool:
    # DingTalk v1.0 throttling codes look like "Forbidden.AccessDenied.QpsLimitForApi".
    lowered = code.lower()
    return any(word in lowered for word in ("qpslimit", "throttl", "flowcontrol", "ratelimit"))


def classify(exc: BaseException) -> Failure:
    """Whether a failed send may succeed later, and whether the platform said "too fast"."""
    raw_code = getattr(exc, "code", None)
    code = None if raw_code is None else str(raw_code)
    status = getattr(exc, "status", None)
    if code in RATE_LIMIT_CODES or status == 429 or (code is not None and _throttle_like(code)):
        return Failure.RATE_LIMITED
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return Failure.RETRYABLE
    if code in TRANSIENT_CODES:
        return Failure.RETRYABLE
    # 401 survives the client's one token refresh only when the token server itself is
    # unsettled; 5xx is the platform's own trouble.
    if isinstance(status, int) and (status >= 500 or status == 401):
        return Failure.RETRYABLE
    if code is not None:
        # The platform refused this very message (unknown robot token, robot not in the group,
        # an invalid parameter): trying again cannot help until an operator fixes it.
        return Failure.PERMANENT
    # Anything else failed on our side, e.g. a bug: back off, dead after the last attempt.
    return Failure.RETRYABLE


@dataclass(frozen=True)
class Limits:
    """Lane limits: each group robot, and each platform's app API."""

    robot_per_min: int = 20
    app_per_min: int = 600


def notification_of(row: OutboxMessage) -> Notification:
    """An outbox row as the neutral notification a platform deliverer sends."""
    reply = reply_from_notice(Notice.from_payload(row.payload))
    kind, _, target = row.target.partition(":")
    if kind == "chat":
        return Notification(row.platform, reply, chat_id=target)
    return Notification(row.platform, reply, user_id=target)


@dataclass
class _Job:
    """A claimed row, ready to send: what, how (lane, robot) or why it cannot be sent."""

    id: int
    kind: str
    platform: str
    target: str
    lane: str = ""
    hook: RobotHook | None = None
    note: Notification | None = None
    problem: str = ""


@dataclass
class Round:
    """What one `run_round` did."""

    now: datetime
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0


@dataclass
class Totals:
    """Counts over several rounds."""

    sent: int = 0
    dead: int = 0
    retrying: int = 0
    deferred: int = 0

    def add(self, result: Round) -> None:
        """Add one round's counts."""
        self.sent += result.sent
        self.dead += result.dead
        self.retrying += result.retrying
        self.deferred += result.deferred


def _ts(instant: datetime) -> float:
    return instant.timestamp()


def _instant(seconds: float) -> datetime:
    # Up to the next millisecond: a row must never come due a hair before its slot frees.
    return datetime.fromtimestamp(math.ceil(seconds * 1000) / 1000, UTC)


class OutboxWorker:
    """Delivers due outbox rows within each lane's limit; never sends inside a transaction."""

    def __init__(
        self,
        *,
        engine: Engine,
        senders: dict[str, Sender],
        robot_senders: dict[str, RobotSender] | None = None,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 50,
        limits: Limits | None = None,
        max_attempts: int = outbox.MAX_ATTEMPTS,
        lease_s: float = 300.0,
    ) -> None:
        self.engine = engine
        self.senders = senders
        self.robot_senders = robot_senders if robot_senders is not None else {}
        self.clock = clock
        self.batch = batch
        self.limits = limits or Limits()
        self.max_attempts = max_attempts
        self.lease_s = lease_s
        robot_rate = per_minute(self.limits.robot_per_min, margin_s=ROBOT_WINDOW_MARGIN_S)
        app_rate = smoothed(self.limits.app_per_min)

        def rate_of(lane: str) -> Rate:
            return robot_rate if lane.startswith("robot:") else app_rate

        self.limiter = SlidingWindowLimiter(rate_of)
        self.totals = Totals()
        self._fanout = Totals()
        # Rows this worker handed back (full lane) or failed (backoff), and when they are due:
        # what `drain` waits for, and when `serve` wakes up next.
        self._deferred: dict[int, datetime] = {}
        self._retrying: dict[int, datetime] = {}
        self._run_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one round

    @property
    def platforms(self) -> set[str]:
        """The platforms this worker can post to: rows of others are left for another worker."""
        return set(self.senders) | set(self.robot_senders)

    def run_once(self) -> int:
        """Send one batch of due rows; how many were sent."""
        return self.run_round().sent

    def run_round(self) -> Round:
        """Claim one batch of due rows, defer those over their lane's limit, send the rest."""
        with self._run_lock:
            now = self.clock()
            result = Round(now=now)
            # Look before taking the write lock: an idle worker must not queue behind writers.
            with read_session(self.engine) as session:
                if not outbox.any_due(
                    session=session, now=now, reclaim=True, platforms=self.platforms
                ):
                    return result
            with write_session(self.engine) as session:
                rows = outbox.claim_due(
                    session=session,
                    now=now,
                    limit=self.batch,
                    lease_s=self.lease_s,
                    platforms=self.platforms,
                )
                jobs = self._jobs(session, rows)
                ready = self._plan(session, jobs, now, result)
            result.claimed = len(rows)
            # Past half the lease another worker may soon take the rows: hand the rest back.
            give_up_at = now + timedelta(seconds=self.lease_s / 2)
            for index, job in enumerate(ready):
                if self._stop.is_set() or self.clock() >= give_up_at:
                    self._release(ready[index:], result)
                    break
                self._deliver(job, result)
            self._note(result)
            return result

    def _jobs(self, session: Session, rows: list[OutboxMessage]) -> list[_Job]:
        """The claimed rows with their lanes: the group's robot if it has one, else the app."""
        chats = {
            row.target.removeprefix("chat:")
            for row in rows
            if row.target.startswith("chat:") and row.platform in self.robot_senders
        }
        hooks: dict[tuple[str, str], RobotHook] = {}
        if chats:
            groups = session.exec(
                select(ChatGroup).where(
                    col(ChatGroup.chat_id).in_(chats), col(ChatGroup.robot_webhook).is_not(None)
                )
            )
            for group in groups:
                if group.robot_webhook:
                    hooks[(str(group.platform), group.chat_id)] = RobotHook(
                        group.robot_webhook, group.robot_secret or None
                    )
        jobs = []
        for row in rows:
            assert row.id is not None
            self._deferred.pop(row.id, None)
            self._retrying.pop(row.id, None)
            job = _Job(row.id, row.kind, row.platform, row.target)
            try:
                job.note = notification_of(row)
            except (KeyError, TypeError, ValueError) as exc:
                job.problem = f"unreadable payload: {type(exc).__name__}: {exc}"
            hook = hooks.get((row.platform, row.target.removeprefix("chat:")))
            if (
                hook is not None
                and row.target.startswith("chat:")
                and row.platform in self.robot_senders
            ):
                job.hook, job.lane = hook, f"robot:{hook.webhook}"
            elif row.platform in self.senders:
                job.lane = f"app:{row.platform}"
            elif not job.problem:
                job.problem = (
                    f"no sender configured for platform {row.platform} (only group robots)"
                )
            jobs.append(job)
        return jobs

    def _plan(self, session: Session, jobs: list[_Job], now: datetime, result: Round) -> list[_Job]:
        """Hand back, in the claim's transaction, the rows their lane has no slot for now."""
        by_lane: dict[str, list[_Job]] = {}
        for job in jobs:
            if not job.problem:
                by_lane.setdefault(job.lane, []).append(job)
        later: set[int] = set()
        for lane, lane_jobs in by_lane.items():
            times = self.limiter.schedule(lane, _ts(now), len(lane_jobs))
            for job, at in zip(lane_jobs, times, strict=True):
                if at > _ts(now):
                    until = _instant(at)
                    outbox.defer(session=session, message_id=job.id, until=until)
                    self._deferred[job.id] = until
                    later.add(job.id)
        result.deferred += len(later)
        return [job for job in jobs if job.id not in later]

    def _deliver(self, job: _Job, result: Round) -> None:
        """Send one row in its lane and settle it (sent, retry later, dead, or handed back)."""
        if job.problem:
            self._settle_failed(job, job.problem, Failure.PERMANENT, self.clock(), None, result)
            return
        assert job.note is not None
        started = _ts(self.clock())
        free_at = self.limiter.free_at(job.lane, started)
        if free_at > started:
            # The lane filled up since the claim (a "too fast" answer earlier in this batch).
            until = _instant(free_at)
            with write_session(self.engine) as session:
                outbox.defer(session=session, message_id=job.id, until=until)
            self._deferred[job.id] = until
            result.deferred += 1
            return
        self.limiter.record(job.lane, started)
        try:
            if job.hook is not None:
                self.robot_senders[job.platform](job.hook, job.note)
            else:
                self.senders[job.platform](job.note)
        except Exception as exc:  # classified below; never lost
            finished = self.clock()
            self.limiter.settle(job.lane, started, _ts(finished))
            failure = classify(exc)
            not_before = None
            if failure is Failure.RATE_LIMITED:
                until = _ts(finished) + self._lockout_s(job)
                self.limiter.block(job.lane, until)
                not_before = _instant(until)
            error = f"{failure}: {type(exc).__name__}: {exc}"
            self._settle_failed(job, error, failure, finished, not_before, result)
            return
        finished = self.clock()
        self.limiter.settle(job.lane, started, _ts(finished))
        with write_session(self.engine) as session:
            outbox.mark_sent(session=session, message_id=job.id, now=finished)
        result.sent += 1

    def _lockout_s(self, job: _Job) -> float:
        if job.hook is not None and job.platform == "dingtalk":
            return DINGTALK_ROBOT_LOCKOUT_S
        return LOCKOUT_S

    def _settle_failed(
        self,
        job: _Job,
        error: str,
        failure: Failure,
        now: datetime,
        not_before: datetime | None,
        result: Round,
    ) -> None:
        with write_session(self.engine) as session:
            outbox.mark_failed(
                session=session,
                message_id=job.id,
                now=now,
                error=error,
                retryable=failure is not Failure.PERMANENT,
                max_attempts=self.max_attempts,
                not_before=not_before,
            )
            row = session.get(OutboxMessage, job.id)
            status = row.status if row is not None else OutboxStatus.DEAD
            due = row.next_attempt_at if row is not None else now
        # The target names a chat or a person, never a credential; the error neither.
        if status == OutboxStatus.DEAD:
            result.dead += 1
            log.error("outbox %s (%s to %s) is dead: %s", job.id, job.kind, job.target, error)
        else:
            result.retrying += 1
            self._retrying[job.id] = due
            log.warning(
                "outbox %s (%s to %s) failed, retry at %s: %s",
                job.id,
                job.kind,
                job.target,
                due.isoformat(timespec="seconds"),
                error,
            )

    def _release(self, jobs: list[_Job], result: Round) -> None:
        """Hand unsent claimed rows back at once (stopping, or the lease is running out)."""
        now = self.clock()
        with write_session(self.engine) as session:
            for job in jobs:
                outbox.defer(session=session, message_id=job.id, until=now)
        result.released += len(jobs)

    # ------------------------------------------------------------------ progress

    def _note(self, result: Round) -> None:
        """Count a round; log a long fan-out's progress every PROGRESS_EVERY posts."""
        self.totals.add(result)
        before = self._fanout.sent
        self._fanout.add(result)
        if self._fanout.sent // PROGRESS_EVERY > before // PROGRESS_EVERY:
            log.info(
                "已发送 %d/%d", self._fanout.sent, self._fanout.sent + self.outstanding(result.now)
            )

    def outstanding(self, now: datetime) -> int:
        """Rows still to settle that are due within the fan-out horizon."""
        with read_session(self.engine) as session:
            return outbox.outstanding(
                session=session, before=now + FANOUT_HORIZON, platforms=self.platforms
            )

    def _idle(self) -> None:
        """The queue ran dry: close the fan-out's account."""
        done = self._fanout
        if done.sent or done.dead:
            log.info(
                "本轮发送完成：已发送 %d 条，放弃 %d 条，待重试 %d 条",
                done.sent,
                done.dead,
                len(self._retrying),
            )
        self._fanout = Totals()

    def next_wake(self, now: datetime, *, retries: bool) -> datetime | None:
        """When a row this worker deferred (and with `retries`, failed) comes due, if any.

        Rows whose time had come by `now` but which a round at `now` did not claim were taken
        by someone else (another worker, `outbox retry`) and are forgotten.
        """
        for waiting in (self._deferred, self._retrying):
            for message_id in [i for i, at in waiting.items() if at <= now]:
                del waiting[message_id]
        times = list(self._deferred.values())
        if retries:
            times += self._retrying.values()
        return min(times, default=None)

    # ------------------------------------------------------------------ loops

    def drain(
        self,
        *,
        retries: bool = False,
        sleep: Callable[[float], object] | None = None,
        on_round: Callable[[Round], None] | None = None,
    ) -> Totals:
        """Send what is due, waiting out full lanes (with `retries`, backoffs too); then return.

        `sleep(seconds)` waits; tests and benchmarks pass one that advances a fake clock.
        """
        wait = sleep if sleep is not None else self._stop.wait
        done = Totals()
        while not self._stop.is_set():
            result = self.run_round()
            done.add(result)
            if on_round is not None:
                on_round(result)
            if result.claimed:
                continue
            wake = self.next_wake(result.now, retries=retries)
            if wake is None:
                break
            wait(max(0.0, (wake - self.clock()).total_seconds()))
        self._idle()
        return done

    def serve(
        self,
        *,
        every_s: float = 2.0,
        extra: Callable[[], None] | None = None,
        extra_every_s: float = 60.0,
    ) -> None:
        """Deliver in the calling thread until `stop()`; `extra` runs every `extra_every_s`."""
        last_extra = 0.0
        while not self._stop.is_set():
            wait = every_s
            try:
                while (result := self.run_round()).claimed and not self._stop.is_set():
                    pass
                wake = self.next_wake(result.now, retries=True)
                if not self._deferred:
                    self._idle()
                if wake is not None:
                    wait = min(every_s, max(0.0, (wake - self.clock()).total_seconds()))
                now = self.clock().timestamp()
                if extra is not None and now - last_extra >= extra_every_s:
                    last_extra = now
                    extra()
            except Exception:  # keep delivering; the next round retries
                log.exception("outbox worker round failed")
            self._wake.wait(wait)
            self._wake.clear()

    def kick(self) -> None:
        """Wake the worker: something was just queued."""
        self._wake.set()

    def start(
        self,
        *,
        every_s: float = 2.0,
        extra: Callable[[], None] | None = None,
        extra_every_s: float = 60.0,
    ) -> None:
        """Run `serve` in a daemon thread until `stop()`."""
        self._thread = threading.Thread(
            target=self.serve,
            kwargs={"every_s": every_s, "extra": extra, "extra_every_s": extra_every_s},
            name="outbox-worker",
            daemon=True,
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loops to stop after the post in hand (from any thread; not in a signal handler,
        see app.stop_signals)."""
        self._stop.set()
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
