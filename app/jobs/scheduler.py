"""When each job runs: APScheduler 3 in BUSINESS_TZ, a catch-up at start, and the processes.

Run exactly one scheduler (`partypoints scheduler`, or embedded in a single-process `make run`):
every scheduler runs every job. A second one by mistake still posts nothing twice (the outbox
key), and on PostgreSQL it mostly skips (each job's advisory lock).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
import time as clock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from app.config import Settings
from app.db import utcnow
from app.jobs import JobResult
from app.jobs.board import monthly_board
from app.jobs.evaluation import evaluation_close_due, evaluation_reminders
from app.jobs.reminders import meeting_reminders, secretary_digest
from app.services.attendance import finalize_due
from app.stop_signals import stop_on_signal, wait_for

log = logging.getLogger(__name__)

# A job that could not run at its time (process busy or suspended) still runs within this.
MISFIRE_GRACE_S = 6 * 3600
EVALUATION_REMINDERS_AT = time(9, 0)
EVALUATION_CLOSE_EVERY = timedelta(hours=1)
MEETING_REMINDERS_EVERY = timedelta(minutes=5)
FINALIZE_DUE_EVERY = timedelta(minutes=1)
# A digest missed by a restart is still worth sending this long after its time; later it
# would only repeat what tomorrow's says.
DIGEST_CATCH_UP = timedelta(hours=3)
# The embedded scheduler lets the web server come up (and `make run` seed) before its first
# runs; the production process starts at once.
EMBEDDED_FIRST_RUN_DELAY = timedelta(seconds=30)


def finalize_due_job(*, engine: Engine, settings: Settings, now: datetime,
                     stop: threading.Event | None = None) -> JobResult:
    """Make attendance final where the check-in window has passed (its summary is queued then).

    No advisory lock: finalize claims each activity with one conditional UPDATE already.
    """
    return JobResult("finalize-due", finalized=finalize_due(engine=engine, now=now,
                                                            tz=settings.tz))


@dataclass(frozen=True)
class JobSpec:
    """A job as the scheduler and `partypoints jobs run` know it."""

    name: str
    label: str
    run: Callable[..., JobResult]


JOBS: dict[str, JobSpec] = {spec.name: spec for spec in (
    JobSpec("monthly-board", "每月积分榜", monthly_board),
    JobSpec("meeting-reminders", "会议提醒", meeting_reminders),
    JobSpec("digest", "书记待办提醒", secretary_digest),
    JobSpec("evaluation-reminders", "月度评议提醒", evaluation_reminders),
    JobSpec("evaluation-close", "评议结果到期结账", evaluation_close_due),
    JobSpec("finalize-due", "自动确认考勤", finalize_due_job),
)}


def catch_up(*, engine: Engine, settings: Settings, now: datetime,
             stop: threading.Event | None = None) -> list[JobResult]:
    """Run what a scheduler that was down at the time would have missed.

    APScheduler's memory job store forgets missed runs across restarts, so at start: the
    month's board once its time has passed (rows already queued cost one lookup per 200
    groups), the self-evaluation reminder on its deadline day, and today's digest if it is
    at most DIGEST_CATCH_UP late.
    """
    tz = settings.tz
    local = now.astimezone(tz)
    today = local.date()
    results: list[JobResult] = []
    board_at = datetime.combine(today.replace(day=1), settings.monthly_board_at, tzinfo=tz)
    if local >= board_at:
        results.append(monthly_board(engine=engine, settings=settings, now=now, stop=stop))
    if local.time() >= EVALUATION_REMINDERS_AT:
        results.append(evaluation_reminders(engine=engine, settings=settings, now=now,
                                            stop=stop))
    digest_at = datetime.combine(today, settings.digest_at, tzinfo=tz)
    if digest_at <= local < digest_at + DIGEST_CATCH_UP:
        results.append(secretary_digest(engine=engine, settings=settings, now=now, stop=stop))
    for result in results:
        log.info("catch-up %s: %s", result.job, result.summary())
    return results


class JobScheduler:
    """APScheduler's BackgroundScheduler with partypoints' jobs and a stop flag for fan-outs."""

    def __init__(self, *, engine: Engine, settings: Settings,
                 first_run_delay: timedelta = timedelta(0)) -> None:
        self.engine = engine
        self.settings = settings
        self.stopping = threading.Event()
        tz = settings.tz
        self.scheduler = BackgroundScheduler(timezone=tz, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S})
        first = datetime.now(tz) + first_run_delay
        board, digest = settings.monthly_board_at, settings.digest_at
        self._add("monthly-board", CronTrigger(day=1, hour=board.hour, minute=board.minute,
                                               timezone=tz))
        self._add("digest", CronTrigger(hour=digest.hour, minute=digest.minute, timezone=tz))
        # Daily; the job decides which reminders fall on the day (the window is the scheme's).
        self._add("evaluation-reminders", CronTrigger(
            hour=EVALUATION_REMINDERS_AT.hour, minute=EVALUATION_REMINDERS_AT.minute,
            timezone=tz))
        self._add("evaluation-close", IntervalTrigger(
            seconds=int(EVALUATION_CLOSE_EVERY.total_seconds()), timezone=tz), first=first)
        self._add("meeting-reminders", IntervalTrigger(
            seconds=int(MEETING_REMINDERS_EVERY.total_seconds()), timezone=tz), first=first)
        self._add("finalize-due", IntervalTrigger(
            seconds=int(FINALIZE_DUE_EVERY.total_seconds()), timezone=tz), first=first)
        self.scheduler.add_job(self._catch_up, DateTrigger(run_date=first, timezone=tz),
                               id="catch-up", name="启动补跑")

    def _add(self, name: str, trigger: CronTrigger | IntervalTrigger,
             first: datetime | None = None) -> None:
        extra = {"next_run_time": first} if first is not None else {}
        self.scheduler.add_job(self.run_job, trigger, args=[name], id=name,
                               name=JOBS[name].label, **extra)

    def run_job(self, name: str) -> JobResult | None:
        """Run one job now, logging its counts (and its failure, to be retried next time)."""
        started = clock.monotonic()
        try:
            result = JOBS[name].run(engine=self.engine, settings=self.settings, now=utcnow(),
                                    stop=self.stopping)
        except Exception:
            log.exception("job %s failed; it runs again at its next time", name)
            return None
        busy = result.queued or result.already_queued or result.finalized or result.locked_out
        log.log(logging.INFO if busy else logging.DEBUG, "job %s: %s (%.1f s)", name,
                result.summary(), clock.monotonic() - started)
        return result

    def _catch_up(self) -> None:
        try:
            catch_up(engine=self.engine, settings=self.settings, now=utcnow(),
                     stop=self.stopping)
        except Exception:
            log.exception("catch-up at start failed; the jobs still run at their times")

    def start(self, *, paused: bool = False) -> None:
        """Start the scheduler's thread."""
        self.stopping.clear()
        self.scheduler.start(paused=paused)
        for job in self.scheduler.get_jobs():
            log.info("scheduled %s (%s): next run %s", job.id, job.name, job.next_run_time)

    def stop(self, *, wait: bool = True) -> None:
        """Stop: running fan-outs end after their current batch; `wait` waits for them."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)


def several_workers(argv: Sequence[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> str | None:
    """Why this looks like one of several web workers (then nothing may be embedded), or None."""
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    concurrency = environ.get("WEB_CONCURRENCY", "").strip()
    if concurrency.isdigit() and int(concurrency) > 1:
        return f"WEB_CONCURRENCY={concurrency}"
    # uvicorn --workers N (its worker processes inherit the parent's argv); gunicorn -w N.
    args = argv + shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in ("--workers", "-w") and not value and i + 1 < len(args):
            value = args[i + 1]
        if name in ("--workers", "-w") and value.isdigit() and int(value) > 1:
            return f"{name} {value}"
    return None


def start_embedded(*, engine: Engine, settings: Settings) -> JobScheduler | None:
    """Start the scheduler inside the (single) web process; refused with a warning otherwise."""
    reason = several_workers()
    if reason is not None:
        log.warning("scheduler NOT embedded: the web server runs several workers (%s), and each "
                    "would run every job; run one `partypoints scheduler` process instead and "
                    "set EMBEDDED_WORKER=false", reason)
        return None
    scheduler = JobScheduler(engine=engine, settings=settings,
                             first_run_delay=EMBEDDED_FIRST_RUN_DELAY)
    scheduler.start()
    return scheduler


def run_forever(*, engine: Engine, settings: Settings) -> None:
    """The production scheduler process: run the jobs until SIGTERM or Ctrl-C, then stop
    cleanly (fan-outs finish their current batch; nothing is cut mid-transaction)."""
    done = threading.Event()
    scheduler = JobScheduler(engine=engine, settings=settings)
    with stop_on_signal(done.set, message="%s received: stopping after the jobs in hand"):
        scheduler.start()
        try:
            wait_for(done)
        finally:
            scheduler.stop(wait=True)
