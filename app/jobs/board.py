"""The monthly board: last month's board to every group bound to a branch, once per group."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import read_session, write_session
from app.domain.periods import month_key, parse_month, previous_month
from app.jobs import JobResult, batches, job_lock, queued_targets
from app.models import ChatGroup, Organization, OrgKind
from app.services import outbox
from app.services.board_post import board_notice
from app.services.reports import ReportError

log = logging.getLogger(__name__)

KIND = "monthly-board"
# A board ranks the members of one branch against each other (MonthResult.rank_in_branch), so
# only groups bound to a branch get one. A committee group would need a different post (branch
# averages and stars), not its members' boards concatenated: such groups are skipped.
BOARD_KINDS = (OrgKind.branch, OrgKind.general_branch)


def monthly_board(*, engine: Engine, settings: Settings, now: datetime,
                  period: str | None = None, stop: threading.Event | None = None) -> JobResult:
    """Queue `period`'s board (default: the month before `now`) to every bound branch group.

    Boards are built outside write transactions; rows are written 200 groups per short
    transaction, and a group that has its row already costs one lookup, no board.
    """
    period = period or previous_month(month_key(now, settings.tz))
    parse_month(period)
    result = JobResult(KIND)
    with read_session(engine) as session:
        groups = session.exec(
            select(ChatGroup.platform, ChatGroup.chat_id, Organization.id, Organization.kind)
            .join(Organization, col(Organization.id) == ChatGroup.organization_id)
            .order_by(col(ChatGroup.id))
        ).all()
    bound = [(str(p), f"chat:{c}", org_id) for p, c, org_id, kind in groups
             if OrgKind(kind) in BOARD_KINDS]
    result.skipped += len(groups) - len(bound)
    log.info("monthly board %s: %d branch groups (%d other groups skipped)", period,
             len(bound), len(groups) - len(bound))
    payloads: dict[int, dict[str, Any] | None] = {}  # per branch: several groups may share one
    done = 0
    for chunk in batches(bound, stop=stop):
        with read_session(engine) as session:
            queued = queued_targets(session, kind=KIND, period=period,
                                    targets=[target for _, target, _ in chunk])
            for _, target, org_id in chunk:
                if target not in queued and org_id not in payloads:
                    payloads[org_id] = _payload(session, settings, org_id, period)
        with write_session(engine) as session:
            if not job_lock(session, f"{KIND}:{period}"):
                result.locked_out = True
                log.info("monthly board %s: another scheduler holds the lock; leaving it", period)
                break
            for platform, target, org_id in chunk:
                payload = payloads.get(org_id)
                if target in queued:
                    result.already_queued += 1
                elif payload is None:
                    result.skipped += 1
                elif outbox.enqueue(session=session, kind=KIND, period=period,
                                    platform=platform, target=target, payload=payload):
                    result.queued += 1
                else:  # queued by a concurrent run since we looked
                    result.already_queued += 1
        done += len(chunk)
        log.info("monthly board %s: %d/%d groups done (%d newly queued)", period, done,
                 len(bound), result.queued)
    return result


def _payload(session: Session, settings: Settings, org_id: int,
             period: str) -> dict[str, Any] | None:
    branch = session.get(Organization, org_id)
    assert branch is not None
    try:
        return board_notice(session=session, settings=settings, branch=branch,
                            period=period).to_payload()
    except ReportError as exc:  # e.g. no scheme in force: nothing to post for this branch
        log.warning("monthly board %s for %s skipped: %s", period, branch.name, exc)
        return None
